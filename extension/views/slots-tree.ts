// Models & Slots: model → instance → slot, rebuilt from each snapshot; VS Code is told which nodes
// changed (tree-keeper.ts), at most every TREE_REFRESH_MS (tree-refresh.ts: faster, it shows none of them).
import * as vscode from 'vscode';
import type { DaemonConnection } from '../core/connection';
import { buildSlotsTree, type SlotsTreeNode } from '../core/slots-tree-model';
import { TreeKeeper } from '../core/tree-keeper';
import { throttle, toDisposable } from '../disposables';
import { themeIcon } from '../icons';
import { TREE_REFRESH_MS } from './tree-refresh';

export class SlotsTreeProvider implements vscode.TreeDataProvider<SlotsTreeNode>, vscode.Disposable {
  #changed = new vscode.EventEmitter<SlotsTreeNode[] | undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  #tree = new TreeKeeper<SlotsTreeNode>();
  /** Nodes changed since VS Code was last told; undefined with #whole. */
  #pending = new Set<SlotsTreeNode>();
  #whole = false;
  #refresh = throttle(() => {
    const nodes = this.#whole ? undefined : [...this.#pending].filter((n) => this.#tree.holds(n));
    this.#whole = false;
    this.#pending.clear();
    this.#changed.fire(nodes);
  }, TREE_REFRESH_MS);
  #conn: DaemonConnection;
  #subs: vscode.Disposable[];

  constructor(conn: DaemonConnection) {
    this.#conn = conn;
    this.#subs = [toDisposable(conn.onSnapshot.on(() => this.#update())), toDisposable(conn.onState.on(() => this.#update()))];
  }

  #update(): void {
    const snap = this.#conn.snapshot;
    const change = this.#tree.update(snap ? buildSlotsTree(snap) : []);
    if (change.kind === 'none') return;
    if (change.kind === 'shape') this.#whole = true;
    else for (const n of change.nodes) this.#pending.add(n);
    this.#refresh(); // the kept nodes are updated in place: VS Code reads the latest when it asks
  }

  getChildren(node?: SlotsTreeNode): SlotsTreeNode[] {
    if (!node) return this.#tree.roots;
    return node.kind === 'slot' ? [] : node.children;
  }

  getTreeItem(node: SlotsTreeNode): vscode.TreeItem {
    const hasChildren = node.kind !== 'slot' && node.children.length > 0;
    const item = new vscode.TreeItem(
      node.label,
      !hasChildren ? vscode.TreeItemCollapsibleState.None : node.expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed,
    );
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.iconPath = themeIcon(node.icon);
    item.contextValue = node.contextValue;
    return item;
  }

  dispose(): void {
    this.#refresh.cancel();
    for (const s of this.#subs) s.dispose();
    this.#changed.dispose();
  }
}
