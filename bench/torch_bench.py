"""PyTorch + PEFT side of `npm run bench`: the same configurations, same GPU.

One JSON spec on argv (see bench/run.ts), one `@@RESULT {json}` line out.
fp32 with TF32 off, eager (no CUDA graphs) unless the spec says "compile": true
(torch.compile, default mode), AdamW.
ShareA: after get_peft_model, every layer's lora_A module for a target is
replaced by layer 0's, so one tensor is trained and the optimizer holds its
state once (model.parameters() de-duplicates shared tensors).
Full ("variant": "full"; bench/run.ts --suite pretrain): no adapter, every
parameter trained (the tied LM head once), with the pretraining recipe of
scripts/pretrain/run.ts: AdamW(lr 1e-3, betas 0.9/0.95, wd 0.1) and the
global gradient norm clipped to 1 (clip_grad_norm_), as bench/worker.ts's
"full" variant does.
An unknown spec key is an error, as in bench/worker.ts.
"""
import json
import sys
import time

SPEC_KEYS = {"config", "batch", "seq", "variant", "clip", "r", "alpha", "targets", "steps", "warmup",
             "attn", "compile", "device", "threads", "fitOnly"}
ADAPTER_KEYS = ("r", "alpha", "targets")


def spec_error(spec):
    """why the spec cannot be run as given, or None"""
    if not isinstance(spec, dict):
        return f"the spec must be a JSON object, got {type(spec).__name__}"
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        return f"unknown spec key(s) {', '.join(unknown)} (valid: {', '.join(sorted(SPEC_KEYS))})"
    variant = spec.get("variant")
    if variant not in ("lora", "sharea", "full"):
        return f"variant must be lora, sharea or full, got {json.dumps(variant)}"
    given = [k for k in ADAPTER_KEYS if k in spec]
    if variant == "full" and given:
        return f"variant full trains every parameter, without an adapter; {', '.join(given)} not taken"
    if variant != "full" and len(given) < len(ADAPTER_KEYS):
        return f"variant {variant} needs r, alpha and targets"
    clip = spec.get("clip")
    if clip is not None and (variant == "full" or isinstance(clip, bool) or not isinstance(clip, (int, float)) or not (0 < clip < float("inf"))):
        return f"clip is a finite number > 0 for variant lora or sharea (full clips at 1), got {json.dumps(clip)} for {variant}"
    return None


def main():
    spec = json.loads(sys.argv[1])
    bad = spec_error(spec)
    if bad:
        variant = spec.get("variant") if isinstance(spec, dict) else None
        print("@@RESULT " + json.dumps({"ok": False, "variant": variant, "error": f"torch_bench spec: {bad}"}), flush=True)
        return
    import torch
    import transformers
    import peft
    from peft import LoraConfig, get_peft_model

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device(spec.get("device", "cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cpu" and spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    cfg = spec["config"]
    res = {"ok": False, "variant": spec["variant"], "device": str(dev), "torch": torch.__version__,
           "transformers": transformers.__version__, "peft": peft.__version__,
           "attn": spec.get("attn", "sdpa")}
    if dev.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(0)
    try:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        kw = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
        mc = transformers.GPT2Config(**kw) if cfg["model_type"] == "gpt2" else transformers.LlamaConfig(**kw)
        fan_in_fan_out = cfg["model_type"] == "gpt2"  # GPT-2's Conv1D stores [in, out]
        with torch.device(dev):
            # from_config takes attn_implementation across transformers 4.36..5.x (the model constructors do not)
            model = transformers.AutoModelForCausalLM.from_config(mc, attn_implementation=spec.get("attn", "sdpa"), torch_dtype=torch.float32)
        model.train()
        full = spec["variant"] == "full"
        if not full:
            lcfg = LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], target_modules=spec["targets"], lora_dropout=0.0,
                              fan_in_fan_out=fan_in_fan_out, bias="none", task_type="CAUSAL_LM")
            model = get_peft_model(model, lcfg)
        if spec["variant"] == "sharea":
            from peft.tuners.lora import LoraLayer
            first = {}
            for name, mod in model.named_modules():
                if isinstance(mod, LoraLayer):
                    role = name.split(".")[-1]
                    if role in first:
                        mod.lora_A["default"] = first[role]
                    else:
                        first[role] = mod.lora_A["default"]
        params = [p for p in model.parameters() if p.requires_grad]
        # "compile": torch.compile of the PEFT model's forward (default mode); its
        # compile time falls in the warm-up steps, which the median leaves out
        fwd = torch.compile(model) if spec.get("compile") else model
        res["compiled"] = bool(spec.get("compile"))
        res["trainableParams"] = sum(p.numel() for p in params)
        res["trainableBytes"] = sum(p.numel() * p.element_size() for p in params)
        # full: the pretraining recipe (scripts/pretrain/run.ts), clip 1; the adapters: bench/worker.ts's AdamW, no clip
        # unless the spec's clip (bench/run.ts --clip: both sides clip at that bound)
        opt = (torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1) if full
               else torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01))
        clip = 1.0 if full else spec.get("clip")
        res["clip"] = clip
        res["initSeconds"] = time.perf_counter() - t0
        g = torch.Generator(device="cpu").manual_seed(7)
        ids = torch.randint(0, cfg["vocab_size"], (spec["batch"], spec["seq"]), generator=g).to(dev)

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize()

        def step():
            out = fwd(input_ids=ids, labels=ids)
            out.loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return out.loss.item()  # the loop reads its loss every step, as ours does

        losses, times = [], []
        for i in range(spec["warmup"] + spec["steps"]):
            if i == spec["warmup"] and dev.type == "cuda":
                sync()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            a = time.perf_counter()
            losses.append(step())
            if i >= spec["warmup"]:
                times.append((time.perf_counter() - a) * 1000)
            if i == 0:
                res["optimizerStateBytes"] = sum(t.numel() * t.element_size() for s in opt.state.values()
                                                for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
            if spec.get("fitOnly"):
                break
        sync()
        res["loss"] = losses
        if times:
            times_sorted = sorted(times)
            n = len(times_sorted)
            med = times_sorted[n // 2] if n % 2 else (times_sorted[n // 2 - 1] + times_sorted[n // 2]) / 2
            res["steps"] = [round(t, 2) for t in times]
            res["medianMs"] = med
            res["tokensPerSec"] = spec["batch"] * spec["seq"] / (med / 1000)
        if dev.type == "cuda":
            res["peakAllocatedBytes"] = torch.cuda.max_memory_allocated()
            res["peakReservedBytes"] = torch.cuda.max_memory_reserved()
            if times:
                res["activationBytes"] = res["peakAllocatedBytes"] - base
        res["weightBytes"] = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
        res["ok"] = True
    except Exception as e:  # reported, not raised: the driver compares what ran
        res["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print("@@RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
