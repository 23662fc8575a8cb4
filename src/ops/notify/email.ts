// E-mail through an SMTP server with nodemailer: smtp:// upgrades with STARTTLS when the server
// offers it, smtps:// is TLS from the start. One transport per target, pooled.
import { readFileSync } from 'node:fs';
import { createTransport, type Transporter } from 'nodemailer';
import { AmberError } from '../../core/errors.ts';
import { type AmberEvent, eventText, eventTitle } from './event.ts';
import type { EmailTarget } from './targets.ts';
import { DELIVERY_TIMEOUT_MS } from './webhook.ts';

export interface Mailer {
  send(event: AmberEvent): Promise<void>;
  close(): void;
}

const firstLine = (file: string, what: string) => {
  try {
    return readFileSync(file, 'utf8').split('\n')[0].trim();
  } catch (cause) {
    throw new AmberError('CONFIG_INVALID', `cannot read the e-mail ${what} file ${file}: ${(cause as Error).message}`, {
      hint: `create the file or correct the notify entry's ${what}-file`,
      cause,
    });
  }
};

export function createMailer(target: EmailTarget): Mailer {
  const url = new URL(target.smtp);
  const auth =
    target.usernameFile || target.passwordFile
      ? {
          user: target.usernameFile ? firstLine(target.usernameFile, 'username') : '',
          pass: target.passwordFile ? firstLine(target.passwordFile, 'password') : '',
        }
      : undefined;
  const secure = url.protocol === 'smtps:';
  const transport: Transporter = createTransport({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    auth,
    pool: true,
    maxConnections: 1,
    connectionTimeout: DELIVERY_TIMEOUT_MS,
    greetingTimeout: DELIVERY_TIMEOUT_MS,
    socketTimeout: DELIVERY_TIMEOUT_MS * 3,
  });
  return {
    async send(event) {
      await transport.sendMail({
        from: target.from,
        to: target.to,
        subject: eventTitle(event),
        text: eventText(event),
        headers: { 'X-Amber-Event': event.type },
      });
    },
    close: () => transport.close(),
  };
}
