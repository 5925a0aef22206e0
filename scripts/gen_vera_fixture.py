"""Reference fixtures for VeRA (Kopiczko et al. 2023) from Hugging Face
transformers + PEFT (PyTorch, float32), in the style of gen_fixtures.py and
gen_sharegroups_fixture.py.

Usage: python3 scripts/gen_vera_fixture.py test/fixtures/hf-reference 1234

It reads the base models gen_fixtures.py wrote (FIXTURES/<family>/model, so
the TypeScript test uses the very same weights) and writes FIXTURES/vera/:
  manifest.json                 per family: targets, r, projection_prng_key, d_initial, trainable count, the
                                projection shapes, and the versions that made it
  <family>/expected.safetensors input_ids, attention_mask, labels, base_logits, and
                                vera.logits, vera.loss, vera.grad.<PEFT name> (every vera_lambda_b / vera_lambda_d,
                                and the classifier for RoBERTa), vera.train_losses (10 steps of torch AdamW, lr 1e-2,
                                torch defaults, full batch)
  <family>/vera/                the adapter as PEFT's save_pretrained writes it with save_projection=True
                                (base_model.vera_A [r, max d_in], base_model.vera_B [max d_out, r])
  <family>/vera-noproj/         the same adapter saved with save_projection=False: the loader must redraw the
                                projections from projection_prng_key with torch's generator
init_weights=False (b = 1, d ~ N(0, 1)), so the adapter changes the output from the start. The targets mix
shapes, so the shared projections are sliced (LLaMA: q 64->64, v 64->32, down 172->64).
"""
import sys, os, json, torch
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel, RobertaForSequenceClassification, LlamaForCausalLM
from peft import VeraConfig, get_peft_model

fixtures, seed = sys.argv[1], int(sys.argv[2])
out = os.path.join(fixtures, 'vera')
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
R, KEY, D_INITIAL = 8, 4321, 0.1
FAMILIES = {
    'gpt2': (GPT2LMHeadModel, ['c_attn', 'c_fc'], True),
    'roberta': (RobertaForSequenceClassification, ['query', 'value', 'intermediate.dense'], False),
    'llama': (LlamaForCausalLM, ['q_proj', 'v_proj', 'down_proj'], False),
}
B, T = 2, 16


def batch(vocab, family):
    """The batch gen_fixtures.py uses (same generator and seed)."""
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long); mask[1, T - 5:] = 0
    if family == 'roberta': ids[1, T - 5:] = 1; ids[:, 0] = 0
    return ids, mask


os.makedirs(out, exist_ok=True)
manifest = {}
for family, (cls, targets, fan) in FAMILIES.items():
    base_dir = os.path.join(fixtures, family, 'model')
    d = os.path.join(out, family); os.makedirs(d, exist_ok=True)
    base = cls.from_pretrained(base_dir).eval()
    cfg = base.config
    ids, mask = batch(cfg.vocab_size, family)
    with torch.no_grad(): base_logits = base(input_ids=ids, attention_mask=mask).logits
    tensors = {'input_ids': ids.to(torch.int32), 'attention_mask': mask.to(torch.int32), 'base_logits': base_logits}
    if family == 'roberta': labels = torch.tensor([0, 1])
    else: labels = ids.clone(); labels[mask == 0] = -100
    tensors['labels'] = labels.to(torch.int32)
    torch.manual_seed(seed + 7)
    m = cls.from_pretrained(base_dir).eval()
    vc = VeraConfig(r=R, target_modules=targets, projection_prng_key=KEY, save_projection=True, vera_dropout=0.0,
                    d_initial=D_INITIAL, fan_in_fan_out=fan,
                    init_weights=False,  # b = 1 and d ~ N(0, 1): the adapter changes the output
                    modules_to_save=['classifier'] if family == 'roberta' else None)
    m = get_peft_model(m, vc)
    m.save_pretrained(os.path.join(d, 'vera'))
    m.peft_config['default'].save_projection = False
    m.save_pretrained(os.path.join(d, 'vera-noproj'))
    m.peft_config['default'].save_projection = True
    vA, vB = m.base_model.vera_A['default'], m.base_model.vera_B['default']
    trainable = {id(p): p for p in m.parameters() if p.requires_grad}
    out_ = m(input_ids=ids, attention_mask=mask, labels=labels)
    out_.loss.backward()
    tensors['vera.logits'] = out_.logits.detach()
    tensors['vera.loss'] = out_.loss.detach().reshape(1)
    seen = set()
    for n, p in m.named_parameters():
        if p.requires_grad and id(p) not in seen and p.grad is not None:
            seen.add(id(p)); tensors[f'vera.grad.{n}'] = p.grad.detach().clone()
    # 10 AdamW steps, lr 1e-2, torch defaults (betas .9/.999, eps 1e-8, weight_decay 0.01)
    opt = torch.optim.AdamW(list(trainable.values()), lr=1e-2)
    losses = []
    for step in range(10):
        opt.zero_grad(); l = m(input_ids=ids, attention_mask=mask, labels=labels).loss
        l.backward(); opt.step(); losses.append(l.item())
    tensors['vera.train_losses'] = torch.tensor(losses)
    tensors = {k: v.contiguous().float() if v.dtype.is_floating_point else v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(d, 'expected.safetensors'))
    manifest[family] = dict(targets=targets, r=R, projection_prng_key=KEY, d_initial=D_INITIAL, model=f'../{family}/model',
                            vera_A=list(vA.shape), vera_B=list(vB.shape),
                            trainable_params=sum(p.numel() for p in trainable.values()))
versions = {'torch': torch.__version__}
import transformers, peft, safetensors
versions.update(transformers=transformers.__version__, peft=peft.__version__, safetensors=safetensors.__version__)
json.dump(dict(seed=seed, versions=versions, families=manifest), open(os.path.join(out, 'manifest.json'), 'w'), indent=1)
print(json.dumps(manifest, indent=1))
