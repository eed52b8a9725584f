/**
 * File storage: blobs on local disk plus `_storage` documents, upload URLs, file serving with ranges, and the
 * storage syscalls the server answers.
 *
 * @module
 */
export { BlobStore, BlobTooLargeError, STORAGE_DIR_NAME, type WrittenBlob } from "./blob_store.ts";
export { parseRange, serveFile } from "./serve.ts";
export {
  isStorageId,
  MAX_SYSCALL_BLOB_BYTES,
  MAX_UPLOAD_BYTES,
  metadataOf,
  parseStorageDocument,
  storageDocument,
  type StorageEntry,
  StorageService,
} from "./storage_service.ts";
export { isStorageCall, READ_BLOB_OP, serveStorageCall, WRITE_BLOB_OP } from "./syscalls.ts";
export { UPLOAD_TOKEN_LIFETIME_MS, UploadTokens } from "./upload_token.ts";
