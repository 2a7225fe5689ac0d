// A JSON import rather than a file read at run time: bundlers (the Lambda bundle) inline it.
import packageJson from '../package.json' with { type: 'json' };

/** The app version from package.json. */
export const APP_VERSION: string = packageJson.version;
