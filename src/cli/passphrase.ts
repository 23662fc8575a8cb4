// Where passphrases come from: an environment variable, a file, or a prompt on the terminal.
import { openSync, readFileSync, closeSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import { AmberError } from '../core/errors.ts';

export interface PassphraseSource {
  envVar: string;
  file?: string;
  prompt: string;
  confirm?: boolean;
  /** The option that names a passphrase file for this one, for the hint; default --password-file. */
  fileOption?: string;
}

export async function readPassphrase(source: PassphraseSource): Promise<string> {
  if (source.file) {
    try {
      return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
    } catch (cause) {
      throw new AmberError('USAGE', `cannot read the passphrase file "${source.file}"`, {
        cause,
        hint: 'check the path and its permissions',
      });
    }
  }
  const fromEnv = process.env[source.envVar];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const hint = `set ${source.envVar} or pass ${source.fileOption ?? '--password-file'}`;
  const first = await promptHidden(source.prompt, hint);
  if (source.confirm && (await promptHidden('enter it again: ', hint)) !== first) {
    throw new AmberError('USAGE', 'the two passphrases differ', { hint: 'run the command again' });
  }
  if (first === '') throw new AmberError('USAGE', 'an empty passphrase is not allowed');
  return first;
}

async function promptHidden(prompt: string, hint: string): Promise<string> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    throw new AmberError('PASSWORD_REQUIRED', 'no passphrase given and no terminal to ask on', {
      hint,
    });
  }
  const input = new ReadStream(fd);
  const output = new WriteStream(fd);
  try {
    output.write(prompt);
    input.setRawMode(true);
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      input.on('data', (data: Buffer) => {
        for (const char of data.toString('utf8')) {
          if (char === '\r' || char === '\n') return resolve(text);
          if (char === '\u0003') return reject(new AmberError('INTERRUPTED', 'interrupted at the passphrase prompt'));
          if (char === '\u007f') text = text.slice(0, -1);
          else text += char;
        }
      });
    });
  } finally {
    input.setRawMode(false);
    output.write('\n');
    input.destroy();
    output.destroy();
    try {
      closeSync(fd);
    } catch {
      /* already closed by the streams */
    }
  }
}
