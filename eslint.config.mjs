// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const frameworks = ['express', 'mongoose', 'bullmq', 'ioredis', 'jsonwebtoken', 'prom-client'];
const noFrameworks = {
  paths: frameworks.map((name) => ({
    name,
    message: 'src/domain stays framework-free: put this in src/adapters/ instead.',
  })),
  patterns: [
    { group: frameworks.map((name) => `${name}/*`), message: 'src/domain stays framework-free.' },
  ],
};
const noProcessEnv = {
  selector: "MemberExpression[object.name='process'][property.name='env']",
  message: 'The library never reads process.env: take an option instead.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'coverage/**', 'bench/results/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', noFrameworks],
      'no-restricted-syntax': ['error', noProcessEnv],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/domain/**'],
    rules: { 'no-restricted-syntax': ['error', noProcessEnv] },
  },
);
