// The YAML parser, for the commands that read a manifest: imported when one runs. (Through this module
// rather than `import('yaml')` directly: bundled, that package is CommonJS and a dynamic import of it
// would have only a default export.)
export { parse as parseYaml, YAMLParseError } from 'yaml';
