"""Load the RoBERTa masked-LM folders scripts/roberta-mlm-roundtrip.ts wrote with transformers itself,
and compare logits (attended positions, 1e-4 relative to the largest), loss, tokenizer ids and the tie.
Usage: python3 check_roberta_mlm.py DIR   (prints a log; exits 1 on any mismatch)"""
import json, os, sys, torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, RobertaForMaskedLM
import transformers
torch.backends.cuda.matmul.allow_tf32 = False
root = sys.argv[1]
manifest = json.load(open(os.path.join(root, 'manifest.json')))
print(f"torch {torch.__version__}, transformers {transformers.__version__}")
bad = 0
for name, m in manifest.items():
    d = m['dir'] if os.path.isabs(m['dir']) or os.path.exists(m['dir']) else os.path.join(os.path.dirname(root.rstrip('/')), m['dir'])
    # issue 20 asks for the Auto class a user would call; it must resolve to RobertaForMaskedLM
    model, info = AutoModelForMaskedLM.from_pretrained(d, output_loading_info=True, dtype=torch.float32)
    if not isinstance(model, RobertaForMaskedLM):
        print(f'{name}: AutoModelForMaskedLM gave {type(model).__name__}, not RobertaForMaskedLM'); bad += 1; continue
    model.eval()
    ours = load_file(os.path.join(d, 'ours.safetensors'))
    ids, mask, labels = ours['input_ids'].long(), ours['attention_mask'].long(), ours['labels'].long()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    keep = mask.bool()
    err = ((out.logits - ours['logits']).abs()[keep].max() / ours['logits'][keep].abs().max()).item()
    loss_err = abs(out.loss.item() - ours['loss'].item()) / abs(out.loss.item())
    tied = model.lm_head.decoder.weight.data_ptr() == model.roberta.embeddings.word_embeddings.weight.data_ptr()
    tok = AutoTokenizer.from_pretrained(d)
    enc = tok(m['sentences'], padding=True, return_tensors='pt')
    same_ids = torch.equal(enc['input_ids'], ids) and torch.equal(enc['attention_mask'], mask)
    keys_ok = not info['missing_keys'] and not info['unexpected_keys'] and not info['mismatched_keys']
    ok = err < 1e-4 and loss_err < 1e-4 and tied and same_ids and keys_ok
    bad += not ok
    print(f"{name}: loaded ({type(tok).__name__}); missing {info['missing_keys']}, unexpected {info['unexpected_keys']}, mismatched {info['mismatched_keys']}; "
          f"decoder tied to embeddings: {tied}; tokenizer ids equal: {same_ids}; max rel logit diff {err:.2e}; loss {out.loss.item():.6f} vs ours {ours['loss'].item():.6f} "
          f"(rel {loss_err:.1e}) {'OK' if ok else 'MISMATCH'}")
sys.exit(1 if bad else 0)
