import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceError } from '../../service/errors.js';
import { chooseSlot, type SlotChoiceInput } from '../../service/slot-choice.js';

const names = (entries: Record<number, string>, max = 10): Map<number, string> => {
  const m = new Map<number, string>();
  for (let id = 2; id <= max; id++) m.set(id, entries[id] ?? '');
  return m;
};
const input = (over: Partial<SlotChoiceInput>): SlotChoiceInput => ({
  username: 'svc', allowFixedSlot: false, names: names({ 2: 'admin' }), maxUsers: 10, fixedNameCount: 1, ...over,
});
const refused = (code: string, field?: string) => (e: unknown): boolean => e instanceof ServiceError && e.code === code && (field === undefined || e.field === field);

test('the slot already holding the name is reused; the lowest when several do', () => {
  assert.deepEqual(chooseSlot(input({ names: names({ 2: 'admin', 5: 'svc' }) })), { userId: 5, how: 'existing-name', currentName: 'svc', warnings: [] });
  const dup = chooseSlot(input({ names: names({ 2: 'admin', 7: 'svc', 4: 'svc' }) }));
  assert.equal(dup.userId, 4);
  assert.match(dup.warnings[0]!, /slots 4, 7/);
});

test('otherwise the first empty slot above user 1 and the fixed-name slots, even when sparse', () => {
  assert.equal(chooseSlot(input({ names: names({ 2: 'admin', 3: 'a', 5: 'b' }) })).userId, 4);
  assert.equal(chooseSlot(input({ names: names({}), fixedNameCount: 3 })).userId, 4, 'slots 2..3 fixed even if their names read empty');
  assert.equal(chooseSlot(input({ names: names({}), fixedNameCount: 0 })).userId, 2, 'user 1 never, even when no fixed count is reported');
});

test('no empty slot: NO_FREE_SLOT', () => {
  const full = names(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [i + 2, `u${i + 2}`])));
  assert.throws(() => chooseSlot(input({ names: full })), refused('NO_FREE_SLOT'));
});

test('an explicit slot: within the BMC, and not while another slot holds the name', () => {
  assert.deepEqual(chooseSlot(input({ slot: 6 })), { userId: 6, how: 'explicit', currentName: '', warnings: [] });
  assert.throws(() => chooseSlot(input({ slot: 11 })), refused('INVALID_REQUEST', 'slot'));
  assert.throws(() => chooseSlot(input({ slot: 6, names: names({ 2: 'admin', 3: 'svc' }) })), refused('INVALID_REQUEST', 'username'));
  assert.equal(chooseSlot(input({ slot: 3, names: names({ 2: 'admin', 3: 'svc' }) })).how, 'explicit');
});

test('vendor fixed-name slots: only with allowFixedSlot, and never renamed', () => {
  const vendor = { names: names({ 2: 'ADMIN' }), fixedNameCount: 2 };
  assert.throws(() => chooseSlot(input({ ...vendor, username: 'ADMIN' })), refused('INVALID_REQUEST', 'allowFixedSlot'));
  assert.equal(chooseSlot(input({ ...vendor, username: 'ADMIN', allowFixedSlot: true })).userId, 2);
  assert.throws(() => chooseSlot(input({ ...vendor, slot: 2, allowFixedSlot: true })), refused('INVALID_REQUEST', 'slot'));
});
