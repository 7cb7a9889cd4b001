// How often a tree view may tell VS Code it changed. The extension host debounces a tree's
// onDidChangeTreeData by 200 ms, passing the first event at once and restarting the wait on each one
// after it (extHostTreeViews.ts: Event.debounce(…, 200, true)). A view fired more often than that (a
// slot's token count on every status push while a reply streams) showed its first change and then
// nothing until the updates paused. Fired at most every TREE_REFRESH_MS, each change is the first
// event after a quiet wait, so it passes at once; the margin covers a late timer on a busy host.
export const TREE_REFRESH_MS = 500;
