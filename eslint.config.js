// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Only src/worker/engine/docker-driver.ts imports dockerode: everything else (tools and tests too) goes through the ContainerDriver port. */
const NO_DOCKERODE = { group: ['dockerode'], message: 'only src/worker/engine/docker-driver.ts imports dockerode: use the ContainerDriver port (tools/testkit/docker.ts in tools and tests)' };
/** The package never imports the repository's tools (bench, chaos, testkit): they do not ship. */
const NO_TOOLS = { group: ['**/tools/testkit/**', '**/tools/bench/**', '**/tools/chaos/**'], message: 'src must not import tools/ (bench, chaos and testkit do not ship)' };
const folder = (from, f) => ({ group: [`**/${f}/**`, `../${f}/*`], message: `${from} must not import ${f} (folders are roles)` });
/** `dir` (a folder, or one .ts file) must not import the folders in `forbidden`; extra patterns are added as they are. */
const layer = (dir, forbidden, extra = [NO_DOCKERODE]) => ({
  files: [dir.endsWith('.ts') ? dir : `${dir}/**/*.ts`],
  rules: { 'no-restricted-imports': ['error', { patterns: [...forbidden.map((f) => folder(dir, f)), ...extra] }] },
});

/** A sub-room of src/worker must not reach back into the composition root (slot-worker.ts wires the rooms; worker-events.ts is their shared vocabulary). */
const NO_WORKER_ROOT = { group: ['../slot-worker.js', '../worker-metrics.js'], message: 'a src/worker room must not import the composition root (slot-worker.ts) or its metrics' };
/** The worker's own outside rules, which every room of it keeps. */
const WORKER_OUTSIDE = ['producer', 'cli', 'gateway'];
/** A room of src/worker: it must not import the rooms in `forbidden` (nor what src/worker itself may not import). */
const room = (name, forbidden, extra = [NO_DOCKERODE]) => layer(`src/worker/${name}`, [...WORKER_OUTSIDE, ...forbidden], [...extra, NO_TOOLS, NO_WORKER_ROOT]);
const ENGINE_FORBIDDEN = ['queue', 'lifecycle', 'images', 'tools'];

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
  // The worker's rooms (docs/architecture.md): executor at the bottom, engine and tools beside each other on it,
  // lifecycle and images above them, queue on top; slot-worker.ts wires them.
  room('executor', ['engine', 'queue', 'lifecycle', 'images', 'tools']),
  room('engine', ENGINE_FORBIDDEN),
  // tools see the slot only through their port (tools/slot-access.ts) and the executor's types.
  room('tools', ['engine', 'queue', 'lifecycle', 'images']),
  // the harness's exec and transfers: like tools, through the slot's port only.
  room('harness', ['engine', 'queue', 'lifecycle', 'images']),
  room('lifecycle', ['queue', 'images']),
  room('images', ['queue']),
  room('queue', []),
  // The container driver is the one dockerode importer (its other layering rules still hold).
  room('engine/docker-driver.ts', ENGINE_FORBIDDEN, []),
  // testkit is shared by the tests, the bench and chaos: it depends on neither tool.
  layer('tools/testkit', ['bench', 'chaos']),
  layer('tools/bench', ['chaos']),
  layer('tools/chaos', ['bench']),
  layer('test', []),
);
