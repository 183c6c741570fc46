import { readFileSync } from 'node:fs';
import { EXIT } from './commands/signals.js';
import { maskUrlCredentials } from './secret.js';

type Command = (args: string[]) => Promise<number>;

/**
 * Each command lives in src/commands/; this file only dispatches (src/cli.ts, the entry, sizes the heap first). A
 * command's module is loaded when it runs: `geb run` then never loads what only the other commands use.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => {
    const { runCommand } = await import('./commands/run.js');
    return () => runCommand();
  },
  simulator: async () => (await import('./commands/simulator.js')).simulatorCommand,
  config: async () => (await import('./commands/config.js')).configCommand,
  rules: async () => (await import('./commands/rules.js')).rulesCommand,
  deliveries: async () => (await import('./commands/deliveries.js')).deliveriesCommand,
  dlq: async () => {
    const { dlqCommand } = await import('./commands/dlq.js');
    return (args) => dlqCommand(args);
  },
  suppressions: async () => (await import('./commands/suppressions.js')).suppressionsCommand,
};

async function usage(): Promise<string> {
  const [run, simulator, config, rules, deliveries, dlq, suppressions] = await Promise.all([
    import('./commands/run.js'),
    import('./commands/simulator.js'),
    import('./commands/config.js'),
    import('./commands/rules.js'),
    import('./commands/deliveries.js'),
    import('./commands/dlq.js'),
    import('./commands/suppressions.js'),
  ]);
  return `Usage: geb <command> [options]

Commands:
${run.RUN_USAGE}
${simulator.SIMULATOR_USAGE}
${config.CONFIG_USAGE}
${rules.RULES_USAGE}
${deliveries.DELIVERIES_USAGE}
${dlq.DLQ_USAGE}
${suppressions.SUPPRESSIONS_USAGE}
  --version                 Print the version.
  help                      Show this text.
`;
}

/** package.json sits one level above both src/geb.ts and dist/geb.js, and ships in the package and the image. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(await usage());
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const load = COMMANDS[command];
  if (!load) {
    process.stderr.write(`geb: unknown command "${command}"\n\n${await usage()}`);
    return EXIT.usage;
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`geb: ${maskUrlCredentials(message)}\n`);
    process.exitCode = EXIT.failure;
  },
);
