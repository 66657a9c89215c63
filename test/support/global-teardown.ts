export default async function globalTeardown(): Promise<void> {
  await Promise.all((globalThis.__RR_SERVERS__ ?? []).map((server) => server.stop()));
}
