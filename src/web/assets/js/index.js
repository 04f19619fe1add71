// The index is rendered by the node; nothing to do here yet.
export {};
