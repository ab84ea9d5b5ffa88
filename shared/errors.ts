/**
 * An error the user caused (a bad flag, a port in use). The entry prints its message as one line
 * and exits with status 2; anything else is a bug and fails loudly with its stack.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** Exit status for errors the user can fix, as command-line tools conventionally use. */
export const EXIT_USAGE = 2;
