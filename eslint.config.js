// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers (docs/development.md, "Layout"). An import is matched by its text, so each group names the folder from
 * wherever a file under src/ may reach it (`../x/…`, `../../x/…`). Type imports count too: a layer that needs another's
 * type declares the shape it reads (structural typing does the rest).
 */
const layer = (...folders) => folders.flatMap((f) => [`../${f}/*`, `../../${f}/*`, `./${f}/*`]);
const PIPELINE = ['../pipeline.js', '../../pipeline.js'];
const CONFIG = ['../config.js', '../../config.js'];
const BRIDGE = ['../bridge.js', '../../bridge.js', ...PIPELINE];
/** What the simulator may import from the rest of src/: nothing but the shared leaf modules. */
const SHARED_LEAVES = ['../errors.js'];
const restrict = (why, ...patterns) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: patterns, message: why }] }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A dropped promise is a lost delivery or an unhandled rejection that kills the process.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // A function longer than a screen hides its steps; split it where it has parts with names.
    files: ['src/**'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
  // Layers: dependencies point one way (DESIGN.md). The pipeline imports the stages; no stage imports the pipeline,
  // the bridge, the simulator or the configuration (each folder declares its own options type).
  {
    files: ['src/rules/**'],
    rules: restrict(
      'src/rules is the lowest layer: it imports neither genesys, kafka, delivery nor the pipeline, bridge, simulator or config',
      ...layer('genesys', 'kafka', 'delivery', 'simulator', 'http', 'commands'),
      ...BRIDGE,
      ...CONFIG,
    ),
  },
  {
    files: ['src/kafka/**'],
    rules: restrict(
      'src/kafka fetches, decodes and writes records: it imports neither genesys, delivery nor the pipeline, bridge, simulator or config',
      ...layer('genesys', 'delivery', 'simulator', 'http', 'commands'),
      ...BRIDGE,
      ...CONFIG,
    ),
  },
  {
    files: ['src/genesys/**'],
    rules: restrict(
      'src/genesys talks to Genesys Cloud: it imports neither kafka, delivery nor the pipeline, bridge, simulator or config',
      ...layer('kafka', 'delivery', 'simulator', 'http', 'commands'),
      ...BRIDGE,
      ...CONFIG,
    ),
  },
  {
    files: ['src/delivery/**'],
    rules: restrict(
      'src/delivery orders, attempts and records deliveries: no pipeline, bridge, simulator or config',
      ...layer('simulator', 'http', 'commands'),
      ...BRIDGE,
      ...CONFIG,
    ),
  },
  {
    files: ['src/delivery/ledger/**'],
    rules: restrict(
      'the delivery ledger is a store: it imports neither kafka, rules, genesys nor the pipeline, bridge, simulator or config',
      ...layer('kafka', 'rules', 'genesys', 'simulator', 'http', 'commands'),
      ...BRIDGE,
      ...CONFIG,
    ),
  },
  {
    files: ['src/telemetry/**', 'src/http/**'],
    rules: restrict(
      'telemetry and the admin server are leaves: no pipeline, bridge, simulator or config',
      ...layer('simulator', 'commands'),
      ...BRIDGE,
      ...CONFIG,
    ),
  },
  {
    files: ['src/simulator/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Everything outside src/simulator but the shared leaves: the simulator stands in for Genesys, so it
              // must not share the bridge's code (a shared bug would hide itself).
              group: ['../*', '../../*', ...SHARED_LEAVES.map((leaf) => `!${leaf}`)],
              message:
                'the simulator imports nothing of the bridge: only its own files and the shared leaves',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/*.ts'],
    ignores: ['src/cli.ts'],
    rules: restrict('the bridge does not import the simulator', ...layer('simulator')),
  },
  {
    files: ['src/commands/**'],
    ignores: ['src/commands/simulator.ts'],
    rules: restrict('only `geb simulator` starts the simulator', ...layer('simulator')),
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: { 'no-console': 'off' },
  },
  {
    // Tests, examples and the benchmark talk to a terminal on purpose.
    files: ['test/**', 'examples/**', 'bench/**', 'src/cli.ts', 'src/commands/**'],
    rules: { 'no-console': 'off' },
  },
);
