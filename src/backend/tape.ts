/**
 * Free memory during the backward pass, as PyTorch's autograd does.
 *
 * tfjs-core's Engine.gradients walks the tape backward inside one tidy and
 * keeps every node's saved tensors and every intermediate gradient until the
 * whole pass ends, so a step's peak holds all activations plus all their
 * gradients (bench/NOTES.md: 5.98 GB for GPT-2 small where PyTorch needed
 * 3.54). Here each tape node's gradient function is wrapped so that, when the
 * next node's gradient is asked for, the previous node's saved tensors and
 * the gradients of its outputs are disposed: once a node has run, nothing
 * reads them again (each tensor is the output of exactly one node).
 *
 * Kept: the pass's seed gradient (the caller's dy, or ones), a gradient
 * object returned by more than one gradient function, and one a node hands
 * back as its own input gradient. Nested (higher-order) gradients are left
 * alone: the engine itself keeps their tape until the outer pass ends.
 * SHARELORA_EAGER_RELEASE=0 turns this off (for measuring it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { flags } from './flags.js';

type Thunks = Record<string, () => tf.Tensor>;
interface TapeNode { saved?: tf.Tensor[]; gradient?: (dys: Array<tf.Tensor | null>) => Thunks }
interface EngineLike {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode(...a: unknown[]): void;
  endTape(): void;
}

let installed = false;

export function installEagerRelease(): void {
  if (installed || !flags.eagerRelease) return;
  installed = true;
  const proto = Object.getPrototypeOf(tf.engine()) as EngineLike;
  const addTapeNode = proto.addTapeNode;
  const endTape = proto.endTape;
  // per backward pass
  let pending: { saved: tf.Tensor[]; dys: tf.Tensor[]; dxs: Set<tf.Tensor> } | null = null;
  let seed: Set<tf.Tensor> | null = null;
  let returned = new WeakMap<tf.Tensor, number>();
  const release = () => {
    if (!pending) return;
    const { saved, dys, dxs } = pending;
    pending = null;
    for (const t of saved) t.dispose();
    for (const d of dys) if (!seed?.has(d) && !dxs.has(d) && (returned.get(d) ?? 0) <= 1) d.dispose();
  };
  proto.endTape = function (this: EngineLike) {
    endTape.call(this);
    if (this.state.gradientDepth === 0) { pending = null; seed = null; returned = new WeakMap(); }
  };
  proto.addTapeNode = function (this: EngineLike, ...args: unknown[]) {
    addTapeNode.apply(this, args);
    const tape = this.state.activeTape;
    const node = tape?.[tape.length - 1];
    const gradient = node?.gradient;
    if (!node || !gradient) return;
    node.gradient = (dys) => {
      if (this.state.gradientDepth !== 0) return gradient(dys);
      release();
      const present = dys.filter((d): d is tf.Tensor => d != null);
      seed ??= new Set(present); // the first node asked for is y's: its dy is the pass's seed
      const thunks = gradient(dys);
      const dxs = new Set<tf.Tensor>();
      const wrapped: Thunks = {};
      for (const k of Object.keys(thunks)) {
        wrapped[k] = () => {
          const r = thunks[k]();
          dxs.add(r);
          returned.set(r, (returned.get(r) ?? 0) + 1);
          return r;
        };
      }
      pending = { saved: node.saved ?? [], dys: present, dxs };
      return wrapped;
    };
  };
}
