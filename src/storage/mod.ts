/**
 * File storage: blobs on local disk or in an S3 bucket, plus `_storage` documents, upload URLs, file serving with ranges, and the
 * storage syscalls the server answers.
 *
 * @module
 */
export {
  type BlobStore,
  BlobTooLargeError,
  isBlobKey,
  isStorageFull,
  LocalBlobStore,
  STORAGE_DIR_NAME,
  StorageFullError,
  type WrittenBlob,
} from "./blob_store.ts";
export {
  MAX_S3_BACKUP_BYTES,
  S3_BACKUP_PREFIX,
  S3_PART_BYTES,
  type S3BackupObject,
  S3BlobStore,
  type S3Options,
  S3RequestError,
} from "./s3_blob_store.ts";
export { amzDateOf, signRequest, type SigV4Credentials, type SigV4Request } from "./sigv4.ts";
export { parseRange, serveFile } from "./serve.ts";
export {
  BadDigestHeaderError,
  digestHeaderSha256,
  expectedSha256Base64,
  Sha256MismatchError,
  StorageIdNotFoundError,
} from "./errors.ts";
export {
  MAX_SYSCALL_BLOB_BYTES,
  MAX_UPLOAD_BYTES,
  metadataOf,
  parseStorageDocument,
  storageDocument,
  type StorageEntry,
  StorageService,
} from "./storage_service.ts";
export { isStorageCall, READ_BLOB_OP, serveStorageCall, UPLOAD_URL_OP, WRITE_BLOB_OP } from "./syscalls.ts";
export { STORAGE_TRANSACTION_SYSCALLS } from "./transaction_syscalls.ts";
export { UPLOAD_TOKEN_LIFETIME_MS, type UploadTokenCheck, uploadTokenRefusal, UploadTokens } from "./upload_token.ts";
