import { describe, expect, it } from 'vitest';
import { TreeKeeper } from '../../extension/core/tree-keeper';
import { buildSlotsTree, type SlotsTreeNode } from '../../extension/core/slots-tree-model';
import type { Snapshot } from '../../shared/protocol';
import { snapshot } from './extension-fixtures';

interface N {
  id: string;
  label: string;
  children?: N[];
}
const tree = (slot1: string, slots = 2): N[] => [
  { id: 'm', label: 'model', children: [{ id: 'm/i', label: 'instance', children: Array.from({ length: slots }, (_, k) => ({ id: `m/i/${k}`, label: k === 1 ? slot1 : 'idle' })) }] },
];

describe('TreeKeeper', () => {
  it('keeps each node object across rebuilds and names only the node whose own fields changed', () => {
    const k = new TreeKeeper<N>();
    expect(k.update(tree('idle')).kind).toBe('shape'); // the first tree
    const slot1 = k.roots[0]!.children![0]!.children![1]!;
    expect(k.update(tree('idle'))).toEqual({ kind: 'none' });
    const change = k.update(tree('busy · 42 tok'));
    expect(change).toEqual({ kind: 'nodes', nodes: [slot1] });
    expect(change.kind === 'nodes' && change.nodes[0]).toBe(slot1); // the same object, updated in place
    expect(slot1.label).toBe('busy · 42 tok');
    expect(k.roots[0]!.children![0]!.children![1]).toBe(slot1);
  });

  it('calls a node coming or going, at any depth, a change of shape', () => {
    const k = new TreeKeeper<N>();
    k.update(tree('idle', 2));
    const instance = k.roots[0]!.children![0]!;
    const gone = instance.children![1]!;
    expect(k.update(tree('idle', 1))).toEqual({ kind: 'shape' });
    expect(k.roots[0]!.children![0]).toBe(instance);
    expect(instance.children!.map((c) => c.id)).toEqual(['m/i/0']);
    expect(k.holds(gone)).toBe(false);
    expect(k.holds(instance)).toBe(true);
    expect(k.update(tree('idle', 1))).toEqual({ kind: 'none' });
    expect(k.update([...tree('idle', 1), { id: 'n', label: 'another model' }]).kind).toBe('shape');
    expect(k.update([]).kind).toBe('shape');
  });

  it('drops a field the new node no longer has', () => {
    const k = new TreeKeeper<N & { next?: string }>();
    k.update([{ id: 'a', label: 'x', next: 'job 1' }]);
    const a = k.roots[0]!;
    expect(k.update([{ id: 'a', label: 'x' }])).toEqual({ kind: 'nodes', nodes: [a] });
    expect('next' in a).toBe(false);
  });

  it('on a real snapshot: a busy slot changes that slot alone', () => {
    const base: Snapshot = snapshot();
    const k = new TreeKeeper<SlotsTreeNode>();
    k.update(buildSlotsTree(base, 1_000));
    const busy = structuredClone(base);
    const inst = busy.models[0]!.instances[0]!;
    inst.slots[0] = { ...inst.slots[0]!, busy: true };
    const change = k.update(buildSlotsTree(busy, 1_000));
    expect(change.kind).toBe('nodes');
    const ids = change.kind === 'nodes' ? change.nodes.map((n) => n.id) : [];
    const model = k.roots[0]!;
    if (model.kind !== 'model') throw new Error(`the root is a ${model.kind}`);
    const slot0 = model.children[0]!.children[0]!;
    expect(ids.filter((id) => id.startsWith('slot:'))).toEqual([slot0.id]); // the idle slots are untouched
    expect(slot0.description).toMatch(/^busy/);
  });
});
