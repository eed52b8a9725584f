/**
 * The Convex value model: convex-JSON, the total order, order-preserving index keys, document IDs, names, limits and
 * validators (convex-compat.md §1). The only public face of `src/values`; every other layer imports from here.
 *
 * @module
 */
export * from "./types.ts";
export { ValueError } from "./errors.ts";
export { isInt64, Kind, kindOf, sortedFieldNames } from "./kind.ts";
export {
  isSpecialFloat,
  jsonToValue,
  jsonToValueOrUndefined,
  parseConvexJsonText,
  valueOrUndefinedToJson,
  valueToJson,
  valueToJsonText,
} from "./json.ts";
export { compareBytes, compareFloats, compareValues, valuesEqual } from "./compare.ts";
export { compareStrings, utf8ByteLength } from "./strings.ts";
export { compareKeys, encodeIndexKey, prefixSuccessor } from "./index_key.ts";
export { keyFromBase64, keyToBase64 } from "./key_text.ts";
export { decodeBase64, encodeBase64 } from "./base64.ts";
export { timestampFromBase64, timestampToBase64 } from "./timestamps.ts";
export { decodeDocumentId, encodeDocumentId, generateDocumentId, isDocumentIdOfTable } from "./ids.ts";
export { getFieldPath, getFieldPathParts } from "./field_path.ts";
export { type FunctionAddress, parseFunctionPath } from "./function_paths.ts";
export {
  checkFieldName,
  checkTableName,
  checkUserTableName,
  fieldNameProblem,
  MAX_FIELD_NAME_LENGTH,
  MAX_IDENTIFIER_LENGTH,
} from "./names.ts";
export {
  checkDocument,
  checkValue,
  formatPath,
  MAX_ARRAY_LENGTH,
  MAX_DOCUMENT_NESTING,
  MAX_DOCUMENT_SIZE_BYTES,
  MAX_OBJECT_FIELDS,
  MAX_VALUE_NESTING,
  MAX_VALUE_SIZE_BYTES,
  valueSizeBytes,
} from "./limits.ts";
export { formatFloat, formatValue } from "./format.ts";
export { jsonNestingExceeds, MAX_JSON_ARGS_NESTING } from "./json_nesting.ts";
export { formatValidator, type IsIdOfTable, parseValidatorJson, validateValue } from "./validators.ts";
