/**
 * An object's method calls passed through a function of the test's: to record them or to refuse
 * them, in front of a real implementation (a port adapter), never instead of one.
 */
export function interceptCalls<T extends object>(
  target: T,
  around: (method: string, call: () => unknown) => unknown,
): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        around(String(property), () => (value as (...a: unknown[]) => unknown).apply(object, args));
    },
  });
}
