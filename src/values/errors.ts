import { DenvexError } from "../errors/mod.ts";

/** The one error type of the values module: a user-readable message about an invalid value, name or ID. */
export class ValueError extends DenvexError {
  constructor(message: string) {
    super("InvalidValue", message, { httpStatus: 400 });
    this.name = "ValueError";
  }
}
