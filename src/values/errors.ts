/** The one error type of the values module: a user-readable message about an invalid value, name or ID. */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValueError";
  }
}
