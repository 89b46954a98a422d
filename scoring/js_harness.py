"""The JavaScript harness: Node's side of a sandboxed run, as source text.

:data:`JS_HARNESS_SOURCE` runs as ``node -e`` after the Python harness
(:mod:`scoring.sandbox_harness`) has set up the sandbox and replaced itself with Node. It
reads ``{"source", "names", "tests", "value_limit"}`` as JSON on stdin, runs the source as a
classic script named ``solution.js`` (with CommonJS ``require``, ``module`` and ``exports``
as globals), finds the function under one of ``names`` (a top-level ``function`` or
``var``, a ``const``/``let`` binding, a ``module.exports`` member, or a method of a class
``Solution``), calls it with each test's arguments (JSON text) and awaits a returned
Promise, then writes one JSON record per test to file descriptor 3, the same records as the
Python harness. A return value that is not a JSON value (``undefined``, ``NaN``, a class
instance, ...) is sent as ``{"ok": true, "shown": <util.inspect text>}`` so that the parent
fails it, naming what was returned. ``console`` and ``process.stdout``/``stderr`` write
synchronously to fd 1, so nothing printed is lost at exit. Embedded as a string so the
harness ships with the package (only ``*.toml`` files are package data).
"""

from __future__ import annotations

from typing import Final

__all__ = ["JS_HARNESS_SOURCE"]

JS_HARNESS_SOURCE: Final = r"""'use strict';
// Mentara's JavaScript harness. Runs as `node -e` inside the sandbox the Python harness set
// up (uid, namespaces, limits), reads its input from stdin and writes one JSON record per
// test to file descriptor 3, a pipe only the parent reads. Everything lives inside this
// function so that none of its names reach the candidate's global scope.
(async () => {
  const fs = require('fs');
  const path = require('path');
  const util = require('util');
  const vm = require('vm');
  const { Writable } = require('stream');
  const { createRequire } = require('module');

  // What the harness uses, captured before candidate code can replace any of it.
  const RESULT_FD = 3;
  const reallyExit = typeof process.reallyExit === 'function' ? process.reallyExit : process.exit;
  const exit = (code) => reallyExit.call(process, code);
  const { parse, stringify } = JSON;
  const { isArray } = Array;
  const { isView } = ArrayBuffer;
  const { getPrototypeOf, keys, prototype: objectPrototype } = Object;
  const { isFinite } = Number;
  const NodeBuffer = Buffer;
  const NodeError = Error;
  const NodePromise = Promise;
  const NodeMap = Map;
  const NodeSet = Set;
  const NodeDataView = DataView;
  const promiseThen = Promise.prototype.then;
  const inspect = util.inspect;
  const reflectApply = Reflect.apply;
  const bigintToString = BigInt.prototype.toString;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
  const MESSAGE_CHARS = 200;

  function writeAll(fd, data) {
    const buffer = typeof data === 'string' ? NodeBuffer.from(data) : data;
    let offset = 0;
    while (offset < buffer.length) {
      try {
        offset += fs.writeSync(fd, buffer, offset, buffer.length - offset);
      } catch (error) {
        if (!error || error.code !== 'EAGAIN') throw error;
        Atomics.wait(sleeper, 0, 0, 1); // a non-blocking pipe that is full: wait, retry
      }
    }
  }

  const send = (line) => writeAll(RESULT_FD, line + '\n');
  const emit = (record) => send(stringify(record));
  const clip = (text, limit) => (text.length <= limit ? text : text.slice(0, limit - 1) + '…');

  function fatal(message) {
    emit({ fatal: true, message });
    exit(0);
  }

  let payload;
  try {
    payload = parse(fs.readFileSync(0, 'utf8'));
  } catch (error) {
    fatal(`sandbox setup failed: ${error && error.message}`);
  }
  const workdir = process.cwd();

  // stdout and stderr: synchronous writes to fd 1 (Node's own pipe streams are asynchronous,
  // so a busy loop would buffer output in memory and an exit would lose it). fd 2 is the
  // results pipe, kept for the runtime's own fatal messages.
  const output = new Writable({
    decodeStrings: true,
    write(chunk, encoding, callback) {
      try {
        writeAll(1, chunk);
        callback();
      } catch (error) {
        callback(error);
      }
    },
  });
  output.on('error', () => {});
  output.fd = 1;
  output.isTTY = false;
  for (const name of ['stdout', 'stderr']) {
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: true,
      get: () => output,
    });
  }

  // libuv's thread pool starts on first use; start it now, so that processes the candidate
  // starts later cannot use up the process limit before Node's own threads exist.
  await new NodePromise((resolve) => fs.stat('.', () => resolve()));

  function show(value) {
    try {
      const text = inspect(value, {
        depth: 3,
        breakLength: Infinity,
        maxArrayLength: 20,
        maxStringLength: 80,
        customInspect: false,
        getters: false,
      });
      return clip(text, 300);
    } catch {
      return 'a value that cannot be shown';
    }
  }

  function lineOf(error, name) {
    let stack;
    try {
      stack = String(error.stack);
    } catch {
      return null;
    }
    if (name === 'SyntaxError') {
      const match = /^solution\.js:(\d+)\n/.exec(stack);
      if (match) return Number(match[1]);
    }
    for (const line of stack.split('\n')) {
      const match = /^\s+at (?:.*\()?solution\.js:(\d+):\d+\)?$/.exec(line);
      if (match) return Number(match[1]);
    }
    return null;
  }

  function describe(error) {
    let name;
    let message;
    try {
      if (error === null || (typeof error !== 'object' && typeof error !== 'function')) {
        return `Uncaught ${show(error)}`;
      }
      name = String(error.name || 'Error');
      message = String(error.message === undefined ? '' : error.message);
    } catch {
      return 'Uncaught exception';
    }
    // No host paths: the working folder is the candidate's "."; a failed require's stack
    // of requiring files is left out.
    message = message.split('\nRequire stack:')[0].split(workdir + path.sep).join('');
    message = clip(message.split(workdir).join('.').trim(), MESSAGE_CHARS);
    const line = lineOf(error, name);
    const where = line ? ` (line ${line})` : '';
    return message ? `${name}: ${message}${where}` : `${name}${where}`;
  }

  // Tests that await: an exception thrown by a callback fails the test awaited at the time;
  // a Promise that cannot settle any more (nothing left in the event loop) fails it too.
  let current = null;
  const STALLED = Symbol('stalled');
  function uncaught(error) {
    if (current) current.reject(error);
    else writeAll(1, `Uncaught ${describe(error)}\n`);
  }
  process.on('uncaughtException', uncaught);
  process.on('unhandledRejection', uncaught);
  process.on('beforeExit', () => {
    if (current) current.reject(STALLED);
  });

  function settle(value) {
    return new NodePromise((resolve, reject) => {
      current = { reject };
      reflectApply(promiseThen, NodePromise.resolve(value), [resolve, reject]);
    });
  }

  class NotJson extends NodeError {}

  function toJson(value, depth) {
    if (depth > 100) throw new RangeError('the returned value is nested too deeply');
    if (value === null) return 'null';
    switch (typeof value) {
      case 'boolean':
        return value ? 'true' : 'false';
      case 'number':
        if (isFinite(value)) return stringify(value);
        throw new NotJson();
      case 'bigint':
        return reflectApply(bigintToString, value, []);
      case 'string':
        return stringify(value);
      case 'object':
        break;
      default:
        throw new NotJson(); // undefined, a function, a symbol
    }
    const items = [];
    if (isArray(value) || (isView(value) && !(value instanceof NodeDataView))) {
      for (let i = 0; i < value.length; i++) items.push(toJson(value[i], depth + 1));
      return `[${items.join(', ')}]`;
    }
    if (value instanceof NodeSet) {
      for (const item of value) items.push(toJson(item, depth + 1));
      return `[${items.sort().join(', ')}]`;
    }
    let entries;
    if (value instanceof NodeMap) {
      entries = [...value].map(([key, item]) => [String(key), item]);
    } else {
      const prototype = getPrototypeOf(value);
      if (prototype !== objectPrototype && prototype !== null) throw new NotJson();
      entries = keys(value).map((key) => [key, value[key]]);
    }
    for (const [key, item] of entries) items.push(`${stringify(key)}: ${toJson(item, depth + 1)}`);
    return `{${items.join(', ')}}`;
  }

  const valueLimit = payload.value_limit;
  function record(index, value) {
    let text;
    try {
      text = toJson(value, 0);
    } catch (error) {
      if (error instanceof NotJson) return stringify({ i: index, ok: true, shown: show(value) });
      return stringify({ i: index, ok: false, error: describe(error) });
    }
    if (text.length > valueLimit) {
      return stringify({ i: index, ok: false, error: 'return value too large' });
    }
    return `{"i": ${index}, "ok": true, "value": ${text}}`;
  }

  // The candidate's globals: CommonJS's require, module and exports, as in a Node module.
  const candidateModule = { exports: {} };
  globalThis.module = candidateModule;
  globalThis.exports = candidateModule.exports;
  globalThis.require = createRequire(path.join(workdir, 'solution.js'));
  globalThis.__filename = 'solution.js';
  globalThis.__dirname = '.';

  const names = payload.names.filter((name) => IDENTIFIER.test(name));
  const before = new NodeMap(names.map((name) => [name, globalThis[name]]));
  emit({ ready: true });

  let script;
  try {
    script = new vm.Script(payload.source, { filename: 'solution.js' });
    script.runInThisContext({ displayErrors: false });
  } catch (error) {
    fatal(describe(error));
  }

  // A top-level function or var, a let/const/class binding, or a module.exports member.
  function lookup(name) {
    let value;
    try {
      value = vm.runInThisContext(`typeof ${name} === 'undefined' ? undefined : ${name}`);
    } catch {
      value = undefined;
    }
    if (value !== undefined && value === before.get(name)) value = undefined; // a Node global
    if (value === undefined) {
      const exported = candidateModule.exports;
      if (exported !== null && (typeof exported === 'object' || typeof exported === 'function')) {
        value = exported[name];
      }
    }
    return value;
  }

  let found;
  let foundName = names[0];
  try {
    for (const name of names) {
      const value = lookup(name);
      if (value !== undefined) {
        found = value;
        foundName = name;
        break;
      }
    }
    if (found === undefined) {
      const Solution = lookup('Solution');
      const method = names.find(
        (name) => typeof Solution === 'function' && typeof Solution.prototype?.[name] === 'function',
      );
      if (method !== undefined) {
        const instance = new Solution();
        found = (...args) => reflectApply(instance[method], instance, args);
      }
    }
  } catch (error) {
    fatal(describe(error));
  }
  if (found === undefined) {
    const also = names.length > 1 ? ` (nor '${names[1]}')` : '';
    fatal(`ReferenceError: function '${names[0]}'${also} is not defined`);
  }
  if (typeof found !== 'function') fatal(`TypeError: '${foundName}' is not a function`);

  for (let index = 0; index < payload.tests.length; index++) {
    let line;
    try {
      let value = reflectApply(found, undefined, parse(payload.tests[index]));
      if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
        value = await settle(value);
      }
      line = record(index, value);
    } catch (error) {
      const message =
        error === STALLED
          ? 'the returned Promise never settled (nothing was left to wait for)'
          : describe(error);
      line = stringify({ i: index, ok: false, error: message });
    } finally {
      current = null;
    }
    send(line);
  }
  emit({ done: true });
  exit(0);
})().catch((error) => {
  try {
    require('fs').writeSync(3, `${JSON.stringify({ fatal: true, message: `harness: ${error}` })}\n`);
  } finally {
    (process.reallyExit || process.exit).call(process, 0);
  }
});
"""
