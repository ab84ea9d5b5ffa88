/**
 * Request targets that try to leave a file server's root, by name: the files core's unit tests
 * check each is refused before any lookup (test/files-protocol.test.ts), and the robust suite
 * sends each to every lab that serves files (test/robust/files.test.ts), with a secret beside the
 * root. Each expects 400 and a close.
 */

import { MAX_PATH_BYTES } from '../../shared/files.js';

export const HOSTILE_TARGETS: Readonly<Record<string, string>> = {
  'a .. segment': '/../secret.txt',
  '.. after a real directory': '/sub/../../secret.txt',
  'percent-encoded ..': '/%2e%2e/secret.txt',
  'mixed-case percent-encoded ..': '/%2E%2e/secret.txt',
  'half-encoded ..': '/.%2e/secret.txt',
  'encoded slash': '/..%2fsecret.txt',
  'encoded slash after a directory': '/sub%2f..%2f..%2fsecret.txt',
  backslash: '/..\\secret.txt',
  'encoded backslash': '/..%5csecret.txt',
  'NUL byte, encoded': '/index.html%00.txt',
  'NUL byte, raw': '/index.html\u0000.txt',
  'a . segment': '/./index.html',
  'empty segment (//)': '//secret.txt',
  'malformed percent-encoding': '/%zz',
  'overlong UTF-8 for . (%c0%ae)': '/%c0%ae%c0%ae/secret.txt',
  'absolute-form target': 'http://x/../secret.txt',
  'a relative target': 'secret.txt',
  'asterisk-form': '*',
  'over-long path': `/${'a/'.repeat(MAX_PATH_BYTES / 2)}x`,
  'over-long segment': `/${'a'.repeat(300)}`,
};

