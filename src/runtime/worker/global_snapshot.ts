/**
 * A snapshot of the worker's global object and the built-in prototypes, taken before user code runs, and restored
 * after every call: a global set by one call (say, the caller's identity) or a polluted `Object.prototype` must not
 * reach the next call, which may be another user's. Module-level variables of the deployment's own modules are not
 * global state and stay (like a warm Convex isolate).
 *
 * Core objects (the global object, its prototype chain, ECMAScript constructors, their prototypes and the hidden
 * iterator/generator intrinsics) are compared descriptor by descriptor. Web API prototypes (`Response.prototype`, …)
 * are only checked for added or removed keys, which keeps the per-call cost low (see scripts/bench/runtime_bench.ts).
 *
 * The restore runs in a worker that user code has touched, so it uses only functions captured at load time and never
 * looks a property up through a prototype chain that user code may have changed.
 */

const ownKeys = Reflect.ownKeys;
const getDescriptor = Reflect.getOwnPropertyDescriptor;
const defineProperty = Reflect.defineProperty;
const deleteProperty = Reflect.deleteProperty;
const getPrototypeOf = Reflect.getPrototypeOf;
const setPrototypeOf = Reflect.setPrototypeOf;
const isExtensible = Reflect.isExtensible;
const objectIs = Object.is;
const createNullObject = () => Object.create(null) as Record<PropertyKey, number>;

/** ECMAScript constructors whose own properties and prototypes are compared in full. */
const CORE_CONSTRUCTORS = [
  "Object",
  "Function",
  "Array",
  "String",
  "Number",
  "Boolean",
  "Symbol",
  "BigInt",
  "Promise",
  "RegExp",
  "Date",
  "Error",
  "TypeError",
  "RangeError",
  "SyntaxError",
  "ReferenceError",
  "EvalError",
  "URIError",
  "AggregateError",
  "Map",
  "Set",
  "WeakMap",
  "WeakSet",
  "WeakRef",
  "FinalizationRegistry",
  "ArrayBuffer",
  "SharedArrayBuffer",
  "DataView",
  "Uint8Array",
  "Int8Array",
  "Uint16Array",
  "Int16Array",
  "Uint32Array",
  "Int32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
  "Uint8ClampedArray",
  "Proxy",
  "Iterator",
  "TextEncoder",
  "TextDecoder",
  "URL",
  "URLSearchParams",
  "Headers",
  "Request",
  "Response",
];
/** Namespace objects compared in full. */
const CORE_NAMESPACES = ["Math", "JSON", "Reflect", "Atomics", "Intl", "console", "Deno", "process", "crypto"];

/** Bits of `ObjectSnapshot.flags`. */
const WRITABLE = 1;
const ENUMERABLE = 2;
const CONFIGURABLE = 4;
const ACCESSOR = 8;

/**
 * One object's own properties as they were, as parallel arrays in the order of `keys` (flat arrays of one shape keep
 * the per-call comparison fast; descriptor objects are only built for the rare property that changed).
 */
interface ObjectSnapshot {
  target: object;
  prototype: object | null;
  extensible: boolean;
  keys: PropertyKey[];
  values: unknown[];
  getters: unknown[];
  setters: unknown[];
  flags: number[];
  /** `keys` as a null-prototype set (key → 1). */
  keySet: Record<PropertyKey, number>;
  /** Whether only added or removed keys are looked for (Web API prototypes). */
  keysOnly: boolean;
}

let snapshots: ObjectSnapshot[] = [];

/**
 * Takes (or retakes) the snapshot. Call it in the worker's idle state (action-mode globals), before user code or
 * right after module top-level code, never after a function's own code has run.
 */
export function takeGlobalSnapshot(): void {
  const full = new Set<object>();
  const add = (value: unknown) => {
    if ((typeof value === "object" && value !== null) || typeof value === "function") full.add(value as object);
  };
  const scope = globalThis as unknown as Record<string, unknown>;
  // Object.prototype first: the restore reads descriptor objects, whose lookups of absent fields reach it.
  add(Object.prototype);
  for (let object: object | null = globalThis; object !== null; object = getPrototypeOf(object)) add(object);
  for (const name of CORE_CONSTRUCTORS) {
    const constructor = scope[name] as { prototype?: unknown } | undefined;
    add(constructor);
    add(constructor?.prototype);
  }
  for (const name of CORE_NAMESPACES) add(scope[name]);
  for (const intrinsic of hiddenIntrinsics()) add(intrinsic);
  const next: ObjectSnapshot[] = [];
  for (const target of full) next.push(snapshotOf(target, false));
  for (const target of webPrototypes(full)) next.push(snapshotOf(target, true));
  snapshots = next;
}

/**
 * Puts every snapshotted object back as it was. Returns false when that is impossible (a frozen or non-configurable
 * change, a prototype made non-extensible): the worker must then be replaced.
 */
export function restoreGlobalSnapshot(): boolean {
  let clean = true;
  for (let i = 0; i < snapshots.length; i++) {
    if (!restoreObject(snapshots[i])) clean = false;
  }
  return clean;
}

function snapshotOf(target: object, keysOnly: boolean): ObjectSnapshot {
  const keys = ownKeys(target);
  const snapshot: ObjectSnapshot = {
    target,
    prototype: getPrototypeOf(target),
    extensible: isExtensible(target),
    keys,
    values: [],
    getters: [],
    setters: [],
    flags: [],
    keySet: createNullObject(),
    keysOnly,
  };
  for (const key of keys) {
    snapshot.keySet[key] = 1;
    const descriptor = getDescriptor(target, key)!;
    snapshot.values.push(descriptor.value);
    snapshot.getters.push(descriptor.get);
    snapshot.setters.push(descriptor.set);
    snapshot.flags.push(flagsOf(descriptor));
  }
  return snapshot;
}

function flagsOf(descriptor: PropertyDescriptor): number {
  return (descriptor.writable ? WRITABLE : 0) | (descriptor.enumerable ? ENUMERABLE : 0) |
    (descriptor.configurable ? CONFIGURABLE : 0) | ("get" in descriptor ? ACCESSOR : 0);
}

/** Whether `now` is the property as snapshotted (only the fields of its kind are read: the common case is fast). */
function sameAsSnapshot(now: PropertyDescriptor, flags: number, value: unknown, get: unknown, set: unknown): boolean {
  const sameKind = (flags & ACCESSOR) !== 0
    ? now.get === get && now.set === set
    : objectIs(now.value, value) && now.writable === ((flags & WRITABLE) !== 0);
  return sameKind && now.enumerable === ((flags & ENUMERABLE) !== 0) &&
    now.configurable === ((flags & CONFIGURABLE) !== 0);
}

/** The snapshot's descriptor of property `i`, as a null-prototype object (no lookups reach Object.prototype). */
function descriptorAt(snapshot: ObjectSnapshot, i: number): PropertyDescriptor {
  const flags = snapshot.flags[i];
  const descriptor = createNullObject() as PropertyDescriptor;
  descriptor.enumerable = (flags & ENUMERABLE) !== 0;
  descriptor.configurable = (flags & CONFIGURABLE) !== 0;
  if ((flags & ACCESSOR) !== 0) {
    descriptor.get = snapshot.getters[i] as () => unknown;
    descriptor.set = snapshot.setters[i] as (value: unknown) => void;
  } else {
    descriptor.value = snapshot.values[i];
    descriptor.writable = (flags & WRITABLE) !== 0;
  }
  return descriptor;
}

function restoreObject(snapshot: ObjectSnapshot): boolean {
  const { target, keys, values, getters, setters, flags, keySet } = snapshot;
  let clean = true;
  if (snapshot.extensible && !isExtensible(target)) clean = false;
  if (getPrototypeOf(target) !== snapshot.prototype && !setPrototypeOf(target, snapshot.prototype)) clean = false;
  const current = ownKeys(target);
  // The common case, nothing added or removed: the same keys in the same order, checked without any lookup.
  let sameKeys = current.length === keys.length;
  for (let i = 0; sameKeys && i < current.length; i++) sameKeys = current[i] === keys[i];
  if (!sameKeys) {
    for (let i = 0; i < current.length; i++) {
      const key = current[i];
      if (!(key in keySet) && !deleteProperty(target, key)) clean = false;
    }
  }
  if (snapshot.keysOnly) {
    if (sameKeys) return clean;
    for (let i = 0; i < keys.length; i++) {
      if (getDescriptor(target, keys[i]) === undefined && !defineProperty(target, keys[i], descriptorAt(snapshot, i))) {
        clean = false;
      }
    }
    return clean;
  }
  for (let i = 0; i < keys.length; i++) {
    const now = getDescriptor(target, keys[i]);
    if (now !== undefined && sameAsSnapshot(now, flags[i], values[i], getters[i], setters[i])) continue;
    if (!defineProperty(target, keys[i], descriptorAt(snapshot, i))) clean = false;
  }
  return clean;
}

/** Built-in prototypes no global names: iterators, generators, async functions, %TypedArray%. */
function hiddenIntrinsics(): unknown[] {
  const arrayIterator = getPrototypeOf([][Symbol.iterator]());
  const generatorFunction = getPrototypeOf(function* () {}) as { prototype: object };
  const asyncGeneratorFunction = getPrototypeOf(async function* () {}) as { prototype: object };
  const asyncIterator = getPrototypeOf(getPrototypeOf(asyncGeneratorFunction.prototype)!);
  return [
    arrayIterator,
    getPrototypeOf(arrayIterator!),
    getPrototypeOf(new Map()[Symbol.iterator]()),
    getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(""[Symbol.iterator]()),
    getPrototypeOf("".matchAll(/x/g)),
    getPrototypeOf(async function () {}),
    generatorFunction,
    generatorFunction.prototype,
    asyncGeneratorFunction,
    asyncGeneratorFunction.prototype,
    asyncIterator,
    getPrototypeOf(Uint8Array),
    getPrototypeOf(Uint8Array.prototype),
  ];
}

/** Prototypes of the other global classes (Web APIs), checked for added or removed keys only. */
function webPrototypes(exclude: Set<object>): object[] {
  const found: object[] = [];
  for (const key of ownKeys(globalThis)) {
    const value = getDescriptor(globalThis, key)?.value as { prototype?: unknown } | undefined;
    if (typeof value !== "function") continue;
    const prototype = value.prototype;
    if (typeof prototype === "object" && prototype !== null && !exclude.has(prototype)) found.push(prototype);
  }
  return found;
}
