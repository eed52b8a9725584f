/**
 * A snapshot of the worker's global object and the built-in prototypes, taken before user code runs, and restored
 * after every call: a global set by one call (say, the caller's identity) or a polluted `Object.prototype` must not
 * reach the next call, which may be another user's. Module-level variables of the deployment's own modules are not
 * global state and stay (like a warm Convex isolate).
 *
 * Core objects (the global object, its prototype chain, ECMAScript constructors, their prototypes and the hidden
 * iterator/generator intrinsics) and the prototypes of the other global classes (Web APIs: `Blob.prototype`,
 * `SubtleCrypto.prototype`, …) are compared property by property. The Web API prototypes were once checked only for
 * added or removed keys, to save time; a method replaced on one (`SubtleCrypto.prototype.digest = hook`) then
 * survived into the next call, which could be another user's.
 *
 * Not compared, for the per-call cost: the prototypes of the ~90 classes Deno defines behind lazy getters on the global
 * object (`ReadableStream`, `FormData`, `WebSocket`, the `GPU*` classes, …; covering them measured +12–17 µs per
 * restore, ~+50 %), objects reached through another object or a lazy getter (`crypto.subtle`, `navigator`,
 * `Intl.DateTimeFormat.prototype`; the objects global data properties hold, such as `WebAssembly` and `performance`, are
 * compared), and the own properties of built-in functions. What a call puts there on purpose stays for the next; the
 * accidental kinds of leak (a global, a polluted core prototype) are covered.
 * RegExp's legacy statics, V8's own state, are emptied before each call instead (worker_main.ts).
 *
 * Listing every object's keys and reading every property's descriptor after every call cost most of a worker's CPU
 * per call (issue 14), so the usual restore proves the snapshot unchanged without them. The functions that can change
 * a property's attributes, turn it into an accessor, add a non-enumerable property, or change an object's prototype or
 * extensibility (`Object.defineProperty` and kin, see SHAPE_CHANGERS) are wrapped: called on a snapshotted object (or
 * a Proxy, which may forward to one) they mark the snapshot for a full restore. Without that mark, a call can only have
 * assigned, added (enumerable, by assignment) or deleted properties, which the enumerable keys (V8 caches them per
 * object shape), the count of symbol keys (prototypes only, see below), a plain read of each writable value and an
 * own-property check of the keys a deletion would not show in that read reveal. Any difference found makes it a full
 * restore.
 *
 * Symbol keys added to the other objects (the global object, constructors, namespaces such as `Math`) are not looked
 * for. Listing an object's symbols walks all of its keys, and over every snapshotted object that was the costliest
 * part of the proof: cache-cold in a busy runner, not listing them at all made a do-nothing query 0.73× the CPU per
 * call (a throwaway build, call_path_ab WORKLOAD=noop, 10 pairs); listing them on prototypes only, 0.89× (issue 14).
 * A symbol key changes built-in behaviour only through the well-known symbols, and those matter on prototypes, which
 * every instance reads them from (`Object.prototype[Symbol.toPrimitive] = spy` would see values of later calls): on a
 * constructor, `Symbol.hasInstance` cannot be assigned (the one `Function.prototype` holds is read-only) and
 * `Symbol.species` is an accessor already; on the global object or a namespace one would only change how that object
 * itself converts. Any other symbol is a key only code holding it can use, so a value left under one is put there on
 * purpose, like a module-level variable, and stays.
 *
 * Other ways to find added keys were measured and are slower (throwaway loops over the objects a worker snapshots, issue
 * 14): `for…in` instead of `Object.keys`, 9.9 against 4.9 µs over 186 objects, and it also lists inherited keys; one
 * `Object.assign` into an object whose prototype traps every set, to catch added string and symbol keys at once, 6.6
 * against 5.5 µs on the 55 prototypes without enumerable keys, and it would run the enumerable getters of the other
 * prototypes (WebIDL attributes); counting `Reflect.ownKeys` of the prototypes, 26 against 9 µs for their symbols. In a
 * loaded runner a restore takes 51–80 µs (not 32 as in restore_bench's warm loop), ~13 of them listing symbols.
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
const hasOwn = Object.hasOwn;
const enumerableKeysOf = Object.keys;
const symbolsOf = Object.getOwnPropertySymbols;
const apply = Reflect.apply;
const setAdd = Set.prototype.add;
const setHas = Set.prototype.has;
const objectIs = Object.is;
const FunctionConstructor = Function;
const quote = JSON.stringify;
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
  /** `Object.keys(target)` as snapshotted. */
  enumerableKeys: string[];
  /** How many of `keys` are symbols. */
  symbolCount: number;
  /** Whether added symbol keys are looked for (prototypes; see the module comment). */
  checksSymbols: boolean;
  /** Indexes into `keys` of the properties whose deletion a read of the value would not reveal (see `readsAsDeleted`). */
  ownChecked: number[];
  /** Whether every writable data property still holds its snapshotted value (see `valueCheckOf`). */
  valuesUnchanged: (target: object) => boolean;
}

let snapshots: ObjectSnapshot[] = [];
/** The objects of `snapshots`, for the shape guards. */
let snapshotTargets = new Set<object>();
/** Set when a guarded function may have changed the shape of a snapshotted object: the next restore is a full one. */
let shapeMayHaveChanged = false;
let fullRestores = 0;

/**
 * Built-in functions that change properties other than by assignment or deletion, or an object's prototype or
 * extensibility: [owner, name, whether the object they change is `this` (else their first argument)].
 */
const SHAPE_CHANGERS: [object, string, boolean][] = [
  [Object, "defineProperty", false],
  [Object, "defineProperties", false],
  [Object, "setPrototypeOf", false],
  [Object, "freeze", false],
  [Object, "seal", false],
  [Object, "preventExtensions", false],
  [Reflect, "defineProperty", false],
  [Reflect, "setPrototypeOf", false],
  [Reflect, "preventExtensions", false],
  [Object.prototype, "__defineGetter__", true],
  [Object.prototype, "__defineSetter__", true],
];

/**
 * Wraps the SHAPE_CHANGERS and the `__proto__` setter so that using them on a snapshotted object marks the snapshot
 * for a full restore. Call once, before the first snapshot (which then records the wrappers as the originals).
 * `isProxy` tells a Proxy apart: what is defined on one may reach a snapshotted object as its target.
 */
export function installShapeGuards(isProxy: (value: unknown) => boolean): void {
  // Through captured functions: user code may replace Set.prototype.has to hide a change.
  const mayChange = (target: unknown) => {
    if (apply(setHas, snapshotTargets, [target]) || isProxy(target)) shapeMayHaveChanged = true;
  };
  for (const [owner, name, onThis] of SHAPE_CHANGERS) {
    const original = (owner as Record<string, (...args: unknown[]) => unknown>)[name];
    // A method (not a constructor), like the built-in, with the built-in's name and length.
    const guarded = {
      [name](this: unknown, ...args: unknown[]): unknown {
        mayChange(onThis ? this : args[0]);
        return apply(original, this, args);
      },
    }[name];
    defineProperty(guarded, "length", { value: original.length, configurable: true });
    defineProperty(owner, name, { value: guarded, writable: true, enumerable: false, configurable: true });
  }
  const proto = getDescriptor(Object.prototype, "__proto__")!;
  const setPrototype = proto.set!;
  function guardedSetPrototype(this: unknown, value: unknown): void {
    mayChange(this);
    apply(setPrototype, this, [value]);
  }
  defineProperty(guardedSetPrototype, "name", { value: setPrototype.name, configurable: true });
  defineProperty(Object.prototype, "__proto__", { ...proto, set: guardedSetPrototype });
}

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
  // Every other object a global data property holds (`WebAssembly`, `Temporal`, `performance`, …: a namespace whose
  // functions a call replaced would keep them for the next), and the prototype of every class one holds (Web APIs).
  for (const key of ownKeys(globalThis)) {
    const value = getDescriptor(globalThis, key)?.value;
    add(typeof value === "function" ? (value as { prototype?: unknown }).prototype : value);
  }
  // The prototypes, whose added symbol keys are looked for (see the module comment): through captured functions, as a
  // retake may follow module top-level code that replaced Array.prototype.includes.
  const intrinsics = new Set<object>();
  for (const intrinsic of hiddenIntrinsics()) {
    add(intrinsic);
    apply(setAdd, intrinsics, [intrinsic]);
  }
  const next: ObjectSnapshot[] = [];
  for (const target of full) {
    next.push(snapshotOf(target, hasOwn(target, "constructor") || apply(setHas, intrinsics, [target])));
  }
  snapshots = next;
  // Module top-level code may have run before a retake: built with captured functions only.
  const targets = new Set<object>();
  for (let i = 0; i < next.length; i++) apply(setAdd, targets, [next[i].target]);
  snapshotTargets = targets;
  shapeMayHaveChanged = false;
}

/**
 * Puts every snapshotted object back as it was. Returns false when that is impossible (a frozen or non-configurable
 * change, a prototype made non-extensible): the worker must then be replaced.
 */
export function restoreGlobalSnapshot(): boolean {
  const shapeChanged = shapeMayHaveChanged;
  shapeMayHaveChanged = false;
  if (!shapeChanged && allUnchanged()) return true;
  fullRestores++;
  let clean = true;
  for (let i = 0; i < snapshots.length; i++) {
    const snapshot = snapshots[i];
    if (!restoreObject(snapshot)) clean = false;
    // Putting a property back (its attributes, or the property itself) can move it in V8's enumeration order. The
    // object holds the snapshot's keys again, so their order now is the one to compare with; keeping the old order
    // would fail the cheap proof after every later call, and each would pay a full restore (seen in runtime_bench's
    // in-process runner, whose worker found `queueMicrotask` redefined after its first call; real runners were spared).
    else snapshot.enumerableKeys = enumerableKeysOf(snapshot.target);
  }
  return clean;
}

/** How many restores could not prove the snapshot unchanged and put properties back (for tests and benchmarks). */
export function fullRestoreCount(): number {
  return fullRestores;
}

/** Whether every snapshotted object is as snapshotted, given that no guarded function touched one. */
function allUnchanged(): boolean {
  // A plain loop: user code may have replaced Array.prototype.every.
  for (let i = 0; i < snapshots.length; i++) if (!unchangedWithoutShapeChange(snapshots[i])) return false;
  return true;
}

/**
 * Whether `snapshot`'s object is as snapshotted, given that no guarded function touched it (see the module comment):
 * its properties then have their attributes and kinds, so reading a data property runs no code, and only a value
 * assigned, an enumerable key added, or a key deleted can differ.
 */
function unchangedWithoutShapeChange(snapshot: ObjectSnapshot): boolean {
  const { target, keys, enumerableKeys, ownChecked } = snapshot;
  const enumerable = enumerableKeysOf(target);
  if (enumerable.length !== enumerableKeys.length) return false;
  for (let i = 0; i < enumerable.length; i++) if (enumerable[i] !== enumerableKeys[i]) return false;
  // An assigned symbol key adds to the count; a deleted one is found below. Every prototype, those without a symbol
  // key of their own too: `Object.prototype[Symbol.toPrimitive] = …` would otherwise reach the next call.
  if (snapshot.checksSymbols && symbolsOf(target).length !== snapshot.symbolCount) return false;
  for (let i = 0; i < ownChecked.length; i++) if (!hasOwn(target, keys[ownChecked[i]])) return false;
  return snapshot.valuesUnchanged(target);
}

/**
 * A function that reads each writable data property of `snapshot`'s object and compares it with its snapshotted value,
 * with one property access per key in its own code: each access site then sees one object and one key, which V8
 * caches, where a loop over the keys of 160 objects is a megamorphic lookup per property (most of the restore's cost,
 * issue 14). Built with functions captured at load time only (see the module comment).
 */
function valueCheckOf(snapshot: ObjectSnapshot): (target: object) => boolean {
  const { keys, values, flags } = snapshot;
  const checkedKeys: PropertyKey[] = [];
  const checkedValues: unknown[] = [];
  let body = "return true";
  for (let i = 0; i < keys.length; i++) {
    if ((flags[i] & (WRITABLE | ACCESSOR)) !== WRITABLE) continue;
    const n = checkedKeys.length;
    checkedKeys[n] = keys[i];
    checkedValues[n] = values[i];
    const read = typeof keys[i] === "string" ? `t[${quote(keys[i])}]` : `t[k[${n}]]`;
    // Object.is for numbers (NaN, -0), a plain comparison for the rest (functions and objects, nearly all of them).
    body += typeof values[i] === "number" ? ` && is(${read}, v[${n}])` : ` && ${read} === v[${n}]`;
  }
  const check = new FunctionConstructor("t", "v", "k", "is", body + ";") as (
    target: object,
    values: unknown[],
    keys: PropertyKey[],
    is: typeof objectIs,
  ) => boolean;
  return (target) => check(target, checkedValues, checkedKeys, objectIs);
}

/**
 * Whether reading property `key` of `target` after deleting it (from the prototype chain, as snapshotted) could give
 * its value `value` again, or run a getter: then only an own-property check reveals its deletion.
 */
function readsAsDeleted(target: object, key: PropertyKey, value: unknown): boolean {
  for (let object = getPrototypeOf(target); object !== null; object = getPrototypeOf(object)) {
    const inherited = getDescriptor(object, key);
    if (inherited !== undefined) return "get" in inherited || objectIs(inherited.value, value);
  }
  return value === undefined;
}

/** `target`'s snapshot; `checksSymbols`: whether the proof looks for added symbol keys (prototypes). */
function snapshotOf(target: object, checksSymbols: boolean): ObjectSnapshot {
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
    enumerableKeys: enumerableKeysOf(target),
    symbolCount: 0,
    checksSymbols,
    ownChecked: [],
    valuesUnchanged: () => true,
  };
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    snapshot.keySet[key] = 1;
    if (typeof key === "symbol") snapshot.symbolCount++;
    const descriptor = getDescriptor(target, key)!;
    const flags = flagsOf(descriptor);
    snapshot.values.push(descriptor.value);
    snapshot.getters.push(descriptor.get);
    snapshot.setters.push(descriptor.set);
    snapshot.flags.push(flags);
    // A configurable property can be deleted; the value check reads the writable data properties. The deletion of an
    // enumerable string key shows in the enumerable keys, and that of a symbol key in the count of symbols where it is
    // checked: only the other keys need an own-property check of their own (a key deleted and assigned again passes
    // it either way).
    const read = (flags & (WRITABLE | ACCESSOR)) === WRITABLE;
    const inKeyLists = typeof key === "symbol" ? checksSymbols : (flags & ENUMERABLE) !== 0;
    if ((flags & CONFIGURABLE) !== 0 && !inKeyLists && (!read || readsAsDeleted(target, key, descriptor.value))) {
      snapshot.ownChecked.push(i);
    }
  }
  snapshot.valuesUnchanged = valueCheckOf(snapshot);
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
