// Text from outside (a server's folder name, a mail subject, a check's output) on its way to a
// terminal: its control characters are shown, never obeyed.
/**
 * Text with its control characters (but line breaks and tabs) shown as \xNN: a check's output, or
 * a record's fields, printed to a terminal cannot move the cursor, retitle the window or hide text.
 */
export function visible(text: string): string {
  // Control characters (Unicode Cc: C0, DEL, C1) other than tab and line feed.
  return text
    .replace(/\r\n/g, '\n')
    .replace(/[^\P{Cc}\t\n]/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
