/**
 * Names users choose (categories, budget scopes, experiments) end up as keys of plain objects, so
 * the names of Object.prototype's members are refused: `constructor` or `__proto__` as a category
 * would otherwise read inherited members. Code that looks such keys up also uses own-property
 * reads (`own`), so a name that slipped past validation still finds nothing. Pure.
 */

const RESERVED = new Set(Object.getOwnPropertyNames(Object.prototype));

export function isReservedName(name: string): boolean {
  return RESERVED.has(name);
}

export const RESERVED_MESSAGE = 'is a reserved name (a member of every JavaScript object, such as constructor or __proto__): choose another';

/** Sets an own property, even for a key such as __proto__ (which `rec[key] = v` would not); returns v. */
export function setOwn<V>(rec: Record<string, V>, key: string, value: V): V {
  Object.defineProperty(rec, key, { value, writable: true, enumerable: true, configurable: true });
  return value;
}

/** The record's own value for the key, never an inherited member. */
export function own<V>(rec: Readonly<Record<string, V>> | undefined, key: string): V | undefined {
  return rec !== undefined && Object.prototype.hasOwnProperty.call(rec, key) ? rec[key] : undefined;
}
