/** Feature statuses and values: plain TypeScript values, apart from the wire types. */
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";

import {
  FeatureStatus as WireStatus,
  ValueListSchema,
  ValueSchema,
  type Value,
  type ValueList,
} from "./gen/featurestore/v1/types_pb.js";

/** Whether a value was found and is fresh (the Python SDK's FeatureStatus). */
export type FeatureStatus = "present" | "null_value" | "not_found" | "outside_max_age";

const statuses: Partial<Record<WireStatus, FeatureStatus>> = {
  [WireStatus.PRESENT]: "present",
  [WireStatus.NULL_VALUE]: "null_value",
  [WireStatus.NOT_FOUND]: "not_found",
  [WireStatus.OUTSIDE_MAX_AGE]: "outside_max_age",
};

/**
 * The status of a wire enum value. A number this client does not know (a status added by a newer
 * server) and UNSPECIFIED (never sent) read as "not_found", as in the Python SDK: that value is
 * not one the caller can use, and the rest of the answer still is.
 */
export function statusFromProto(status: WireStatus): FeatureStatus {
  return statuses[status] ?? "not_found";
}

/** A feature value; int64 values are bigints, unix timestamps Dates, null when unset. */
export type Scalar = number | bigint | string | boolean | Uint8Array | Date | null;

/** An entity key value. */
export type EntityValue = string | number | bigint;

/** One value, its status and the event time of the row it comes from. */
export interface FeatureValue {
  readonly value: Scalar;
  readonly status: FeatureStatus;
  /** Undefined where not found; to the millisecond (a Date holds no more). */
  readonly eventTime?: Date;
  /** The event time in microseconds since the Unix epoch, exact; undefined where not found. */
  readonly eventTimeMicros?: bigint;
}

/** The TypeScript value of a wire Value. */
export function scalar(value: Value | undefined): Scalar {
  const kind = value?.kind;
  if (kind === undefined || kind.case === undefined) {
    return null;
  }
  if (kind.case === "unixTimestampValue") {
    return new Date(Number(kind.value) * 1000);
  }
  return kind.value;
}

/** The event time of a row, or undefined for the empty timestamp of a value not found. */
export function eventTime(timestamp: Timestamp | undefined): Date | undefined {
  if (timestamp === undefined || (timestamp.seconds === 0n && timestamp.nanos === 0)) {
    return undefined;
  }
  return timestampDate(timestamp);
}

/** A timestamp in microseconds since the Unix epoch (the server's times are microseconds). */
export function timestampMicros(timestamp: Timestamp): bigint {
  return timestamp.seconds * 1_000_000n + BigInt(Math.floor(timestamp.nanos / 1000));
}

/** The exact event time of a row (µs), or undefined for the empty timestamp of a value not found. */
export function eventTimeMicros(timestamp: Timestamp | undefined): bigint | undefined {
  if (timestamp === undefined || (timestamp.seconds === 0n && timestamp.nanos === 0)) {
    return undefined;
  }
  return timestampMicros(timestamp);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The wire Value of an entity value: strings and integers as such; other numbers as doubles, for
 * the server to refuse naming the field (as the Python SDK lets it).
 *
 * @throws RangeError An integer outside int64, or a number past 2^53, where a number may no
 *   longer be the integer meant (2 ** 53 + 1 reads as 2 ** 53): pass a bigint.
 */
function toValue(x: EntityValue, where: string): Value {
  if (typeof x === "string") {
    return create(ValueSchema, { kind: { case: "stringValue", value: x } });
  }
  if (typeof x === "number" && Number.isInteger(x) && !Number.isSafeInteger(x)) {
    throw new RangeError(
      `${where}: ${x} is past Number.MAX_SAFE_INTEGER, so it may not be the integer meant: ` +
        "pass a bigint",
    );
  }
  if (typeof x === "bigint" || Number.isInteger(x)) {
    const integer = BigInt(x);
    if (integer < INT64_MIN || integer > INT64_MAX) {
      throw new RangeError(`${where}: ${integer} is outside int64`);
    }
    return create(ValueSchema, { kind: { case: "int64Value", value: integer } });
  }
  return create(ValueSchema, { kind: { case: "doubleValue", value: x } });
}

/**
 * Wire columns (join key to one value per row).
 *
 * @throws RangeError An integer the wire cannot carry, named as `entities[key][row]`.
 */
export function valueLists(
  columns: Record<string, readonly EntityValue[]>,
): Record<string, ValueList> {
  const lists: Record<string, ValueList> = {};
  for (const [name, column] of Object.entries(columns)) {
    lists[name] = create(ValueListSchema, {
      values: column.map((x, row) => toValue(x, `entities[${name}][${row}]`)),
    });
  }
  return lists;
}
