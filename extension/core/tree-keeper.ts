// Keeps one object per tree node id across rebuilds, so a tree view can be told which nodes changed.
// VS Code knows a TreeDataProvider's elements by object identity: a tree rebuilt from each snapshot can
// only be refreshed whole, and a whole refresh of a three-level tree is three round trips between the
// window and the extension host (getChildren per level). Told the changed nodes, VS Code asks for
// those alone: a slot's token count is one getTreeItem.

/** A node of a tree whose nodes, at every depth, are of type N (a union of its levels' node types). */
export interface KeptNode<N> {
  id: string;
  children?: readonly N[];
}

/**
 * What changed: nothing; the tree's shape (a node came or went: refresh it whole, as VS Code then also
 * re-reads which nodes have children and their expansion); or only these kept nodes' own fields.
 */
export type TreeChange<T> = { kind: 'none' } | { kind: 'shape' } | { kind: 'nodes'; nodes: T[] };

export class TreeKeeper<T extends KeptNode<T>> {
  #byId = new Map<string, T>();
  #roots: T[] = [];

  get roots(): T[] {
    return this.#roots;
  }

  /** Whether this object is in the tree now (a node listed as changed may have gone since). */
  holds(node: T): boolean {
    return this.#byId.get(node.id) === node;
  }

  /**
   * Takes a freshly built tree. A node whose id was there before keeps its object, its fields updated in
   * place, and is listed as changed when one of its own fields did.
   */
  update(next: T[]): TreeChange<T> {
    const byId = new Map<string, T>();
    const changed: T[] = [];
    let shape = false;
    const keep = (node: T): T => {
      const old = this.#byId.get(node.id);
      const children = node.children?.map(keep);
      if (!old) {
        byId.set(node.id, node);
        if (children) node.children = children;
        return node;
      }
      const { children: oldChildren, ...oldOwn } = old;
      const { children: _newChildren, ...newOwn } = node;
      if (!sameJson(oldOwn, newOwn)) {
        for (const k of Object.keys(oldOwn)) if (!(k in newOwn)) delete (old as Record<string, unknown>)[k];
        Object.assign(old, newOwn);
        changed.push(old);
      }
      if (!sameIds(oldChildren, children)) shape = true;
      if (children) old.children = children;
      else delete old.children;
      byId.set(node.id, old);
      return old;
    };
    const roots = next.map(keep);
    if (!sameIds(this.#roots, roots)) shape = true;
    this.#byId = byId;
    this.#roots = roots;
    if (shape) return { kind: 'shape' };
    return changed.length ? { kind: 'nodes', nodes: changed } : { kind: 'none' };
  }
}

function sameIds(a: readonly { id: string }[] | undefined, b: readonly { id: string }[] | undefined): boolean {
  if (!a || !b) return a === b || (a?.length ?? 0) + (b?.length ?? 0) === 0;
  return a.length === b.length && a.every((n, i) => n.id === b[i]!.id);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
