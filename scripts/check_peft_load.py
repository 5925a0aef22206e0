"""Load the adapters scripts/peft-roundtrip.ts wrote with PEFT itself and compare logits.
Usage: python3 check_peft_load.py DIR   (prints one line per adapter, exits 1 on any mismatch)"""
import json, os, sys, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from peft import PeftModel
torch.backends.cuda.matmul.allow_tf32 = False
root = sys.argv[1]
manifest = json.load(open(os.path.join(root, 'manifest.json')))
bad = 0
for name, m in manifest.items():
    d = os.path.join(root, name)
    cls = AutoModelForSequenceClassification if m['family'] == 'roberta' else AutoModelForCausalLM
    base_dir = os.path.join(os.path.dirname(root.rstrip('/')), m['model']) if not os.path.isabs(m['model']) else m['model']
    base = cls.from_pretrained(base_dir).eval()
    model = PeftModel.from_pretrained(base, d).eval()
    ours = load_file(os.path.join(d, 'ours.safetensors'))
    with torch.no_grad():
        logits = model(input_ids=ours['input_ids'].long(), attention_mask=ours['attention_mask'].long()).logits
    keep = ours['attention_mask'].bool() if logits.dim() == 3 else torch.ones(logits.shape[0], dtype=torch.bool)
    err = ((logits - ours['logits']).abs()[keep].max() / ours['logits'][keep].abs().max()).item()
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ok = err < 1e-4
    bad += not ok
    print(f"{name}: PEFT loaded it; max rel logit diff {err:.2e} {'OK' if ok else 'MISMATCH'} (PEFT counts {n} trainable untied, ours {m['trainable']} tied)")
sys.exit(1 if bad else 0)
