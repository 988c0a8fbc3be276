import './core.ts';
import './strings.ts';
import './objects.ts';
import './time.ts';
import './misc.ts';
import './net.ts';
import './jwt.ts';
import './graphql.ts';
import './x509.ts';
import './providers.ts';
import './jsonschema.ts';

export { type Builtin, type BuiltinContext, builtins } from './registry.ts';
