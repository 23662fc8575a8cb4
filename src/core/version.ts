// Amber's version: what `amber --version` prints and what every snapshot records as its writer.
// Kept equal to package.json's by version.test.ts (the installed package has no package.json to read
// at a known place, so it is not read at run time).
export const AMBER_VERSION = '0.2.0';
