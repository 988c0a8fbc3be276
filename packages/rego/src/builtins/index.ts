import './core.ts';
import './strings.ts';
import './objects.ts';
import './time.ts';
import './misc.ts';
import './net.ts';
import './jwt.ts';

export { type Builtin, type BuiltinContext, builtins } from './registry.ts';
