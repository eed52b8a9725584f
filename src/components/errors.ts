/**
 * The error of a refused component tree: the pushed `convex.config.ts` files are at fault, so the CLI gets a 400 with
 * the message, and the deployment keeps serving its old code.
 */
import { DenvexError } from "../errors/mod.ts";

/** See the module comment. `code` is what the CLI prints before the message. */
export class ComponentDefinitionError extends DenvexError {
  constructor(code: string, message: string) {
    super(code, message, { httpStatus: 400 });
    this.name = "ComponentDefinitionError";
  }
}
