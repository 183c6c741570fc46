import { readFileSync } from 'node:fs';
import { CONFIG_USAGE, configCommand } from './commands/config.js';
import { DLQ_USAGE, dlqCommand } from './commands/dlq.js';
import { RUN_USAGE, runCommand } from './commands/run.js';
import { RULES_USAGE, rulesCommand } from './commands/rules.js';
import { DELIVERIES_USAGE, deliveriesCommand } from './commands/deliveries.js';
import { EXIT } from './commands/signals.js';
import { maskUrlCredentials } from './secret.js';
import { SIMULATOR_USAGE, simulatorCommand } from './commands/simulator.js';
import { SUPPRESSIONS_USAGE, suppressionsCommand } from './commands/suppressions.js';

/** Each command lives in src/commands/; this file only dispatches (src/cli.ts, the entry, sizes the heap first). */
const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  run: () => runCommand(),
  simulator: simulatorCommand,
  config: configCommand,
  rules: rulesCommand,
  deliveries: deliveriesCommand,
  dlq: (args) => dlqCommand(args),
  suppressions: suppressionsCommand,
};

const USAGE = `Usage: geb <command> [options]

Commands:
${RUN_USAGE}
${SIMULATOR_USAGE}
${CONFIG_USAGE}
${RULES_USAGE}
${DELIVERIES_USAGE}
${DLQ_USAGE}
${SUPPRESSIONS_USAGE}
  --version                 Print the version.
  help                      Show this text.
`;

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
    process.stdout.write(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const handler = COMMANDS[command];
  if (!handler) {
    process.stderr.write(`geb: unknown command "${command}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  return handler(rest);
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
