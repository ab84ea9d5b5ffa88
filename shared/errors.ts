/**
 * An error the user caused (a bad flag, a port in use). The entry prints its message as one line
 * and exits with status 2; anything else is a bug and fails loudly with its stack.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** Exit status for errors the user can fix, as command-line tools conventionally use. */
export const EXIT_USAGE = 2;

/**
 * For a command's top-level `.catch`: a UserError becomes one line on stderr, `name: message`
 * (any newline folded, as yargs words some messages over several lines), and exit status 2.
 * Anything else is rethrown, to fail loudly with its stack.
 */
export function exitOnUserError(name: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof UserError) {
      console.error(`${name}: ${error.message.replace(/\s*\n\s*/g, ' ').trim()}`);
      process.exit(EXIT_USAGE);
    }
    throw error;
  };
}
