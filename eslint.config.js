// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Only src/worker/docker-driver.ts imports dockerode: everything else (tools and tests too) goes through the ContainerDriver port. */
const NO_DOCKERODE = { group: ['dockerode'], message: 'only src/worker/docker-driver.ts imports dockerode: use the ContainerDriver port (tools/testkit/docker.ts in tools and tests)' };
/** The package never imports the repository's tools (bench, chaos, testkit): they do not ship. */
const NO_TOOLS = { group: ['**/tools/**'], message: 'src must not import tools/ (bench, chaos and testkit do not ship)' };
const folder = (from, f) => ({ group: [`**/${f}/**`, `../${f}/*`], message: `${from} must not import ${f} (folders are roles)` });
/** `dir` must not import the folders in `forbidden`; extra patterns are added as they are. */
const layer = (dir, forbidden, extra = [NO_DOCKERODE]) => ({
  files: [`${dir}/**/*.ts`],
  rules: { 'no-restricted-imports': ['error', { patterns: [...forbidden.map((f) => folder(dir, f)), ...extra] }] },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'scratch/**', 'bin/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  layer('src', [], [NO_DOCKERODE, NO_TOOLS]), // every src folder, including ones without rules of their own
  layer('src/shared', ['producer', 'worker', 'cli', 'gateway'], [NO_DOCKERODE, NO_TOOLS]),
  layer('src/producer', ['worker', 'cli', 'gateway'], [NO_DOCKERODE, NO_TOOLS]),
  layer('src/worker', ['producer', 'cli', 'gateway'], [NO_DOCKERODE, NO_TOOLS]),
  layer('src/cli', [], [NO_DOCKERODE, NO_TOOLS]),
  // The gateway fronts SlotBackend: it may import producer and shared, never the worker.
  layer('src/gateway', ['worker', 'cli'], [NO_DOCKERODE, NO_TOOLS]),
  // The container driver is the one dockerode importer (its other layering rules still hold).
  { files: ['src/worker/docker-driver.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [folder('src/worker', 'producer'), folder('src/worker', 'cli'), NO_TOOLS] }] } },
  // testkit is shared by the tests, the bench and chaos: it depends on neither tool.
  layer('tools/testkit', ['bench', 'chaos']),
  layer('tools/bench', ['chaos']),
  layer('tools/chaos', ['bench']),
  layer('test', []),
);
