// Models & Slots: model → instance → slot, rebuilt from each snapshot; refreshed only when it changed,
// at most every TREE_REFRESH_MS (tree-refresh.ts: faster, VS Code shows none of the updates).
import * as vscode from 'vscode';
import type { DaemonConnection } from '../core/connection';
import { buildSlotsTree, type ModelNode, type SlotsTreeNode } from '../core/slots-tree-model';
import { throttle, toDisposable } from '../disposables';
import { themeIcon } from '../icons';
import { TREE_REFRESH_MS } from './tree-refresh';

export class SlotsTreeProvider implements vscode.TreeDataProvider<SlotsTreeNode>, vscode.Disposable {
  #changed = new vscode.EventEmitter<SlotsTreeNode | undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  #roots: ModelNode[] = [];
  #key = '';
  #refresh = throttle(() => this.#changed.fire(undefined), TREE_REFRESH_MS);
  #conn: DaemonConnection;
  #subs: vscode.Disposable[];

  constructor(conn: DaemonConnection) {
    this.#conn = conn;
    this.#subs = [toDisposable(conn.onSnapshot.on(() => this.#update())), toDisposable(conn.onState.on(() => this.#update()))];
  }

  #update(): void {
    const snap = this.#conn.snapshot;
    this.#roots = snap ? buildSlotsTree(snap) : [];
    // Descriptions carry the changing numbers, so the serialized tree is the change key.
    const key = JSON.stringify(this.#roots);
    if (key === this.#key) return;
    this.#key = key;
    this.#refresh(); // getChildren() reads #roots when VS Code asks: always the latest snapshot
  }

  getChildren(node?: SlotsTreeNode): SlotsTreeNode[] {
    if (!node) return this.#roots;
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
