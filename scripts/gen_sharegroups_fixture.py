"""Reference fixtures for ShareLoRA with share groups: the shared matrix tied
within groups of layers rather than across all of them, from Hugging Face
transformers + PEFT (PyTorch, float32), in the style of gen_fixtures.py.

Usage: python3 scripts/gen_sharegroups_fixture.py test/fixtures/hf-reference 1234

It reads the base models gen_fixtures.py wrote (FIXTURES/<family>/model, so
the TypeScript test uses the very same weights) and writes
FIXTURES/sharegroups/:
  manifest.json                 per family: targets, r, alpha, and per case its share, groups, trainable count
  <family>/expected.safetensors input_ids, attention_mask, labels, base_logits, and per case
                                <case>.logits, <case>.loss, <case>.grad.<PEFT name> (a tied tensor once,
                                under its group's first layer: the gradient summed over the group),
                                <case>.train_losses (10 steps of torch AdamW, lr 1e-2, defaults)
  <family>/<case>/              the adapter as PEFT's save_pretrained writes it (every layer's copy, no
                                record of the tie: the loader must find the groups from the copies)
Cases: share A, B, AB, each with groups [[0, 1], [2]] (k = 2 on 3 layers) and [[0, 2], [1]] (not contiguous).
"""
import sys, os, json, torch
from safetensors.torch import save_file
from transformers import RobertaForSequenceClassification, LlamaForCausalLM
from peft import LoraConfig, get_peft_model

fixtures, seed = sys.argv[1], int(sys.argv[2])
out = os.path.join(fixtures, 'sharegroups')
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
FAMILIES = {
    'roberta': (RobertaForSequenceClassification, ['query', 'key', 'value']),
    'llama': (LlamaForCausalLM, ['q_proj', 'k_proj', 'v_proj']),
}
GROUPINGS = {'k2': [[0, 1], [2]], 'split': [[0, 2], [1]]}
B, T = 2, 16


def batch(vocab, family):
    """The batch gen_fixtures.py uses (same generator and seed)."""
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long); mask[1, T - 5:] = 0
    if family == 'roberta': ids[1, T - 5:] = 1; ids[:, 0] = 0
    return ids, mask


def layers_of(model, family):
    return (model.base_model.model.roberta.encoder.layer if family == 'roberta'
            else model.base_model.model.model.layers)


def module(layer, family, t):
    return getattr(layer.attention.self, t) if family == 'roberta' else getattr(layer.self_attn, t)


def tie(model, family, targets, share, groups):
    """ShareLoRA within groups: every layer of a group uses the group's first layer's lora_A / lora_B
    (the same module aliasing gen_fixtures.py does for one group of all layers)."""
    layers = layers_of(model, family)
    assert sorted(l for g in groups for l in g) == list(range(len(layers))), 'groups must partition the layers'
    for t in targets:
        for g in groups:
            first = module(layers[g[0]], family, t)
            for l in g[1:]:
                m = module(layers[l], family, t)
                if 'A' in share: m.lora_A['default'] = first.lora_A['default']
                if 'B' in share: m.lora_B['default'] = first.lora_B['default']


def check_tied(model, family, targets, share, groups):
    """The aliasing took: one parameter object per (target, group) for each shared matrix, distinct across groups."""
    layers = layers_of(model, family)
    for t in targets:
        for which in ('A', 'B'):
            ids = [[id(getattr(module(layers[l], family, t), f'lora_{which}')['default'].weight) for l in g] for g in groups]
            if which in share:
                assert all(len(set(x)) == 1 for x in ids), (t, which, 'not tied within a group')
                assert len({x[0] for x in ids}) == len(groups), (t, which, 'tied across groups')
            else:
                assert len({i for x in ids for i in x}) == len(layers), (t, which, 'tied although not shared')


os.makedirs(out, exist_ok=True)
manifest = {}
for family, (cls, targets) in FAMILIES.items():
    base_dir = os.path.join(fixtures, family, 'model')
    d = os.path.join(out, family); os.makedirs(d, exist_ok=True)
    base = cls.from_pretrained(base_dir).eval()
    cfg = base.config
    assert cfg.num_hidden_layers == 3, 'the groupings are written for the 3-layer fixtures'
    ids, mask = batch(cfg.vocab_size, family)
    with torch.no_grad(): base_logits = base(input_ids=ids, attention_mask=mask).logits
    tensors = {'input_ids': ids.to(torch.int32), 'attention_mask': mask.to(torch.int32), 'base_logits': base_logits}
    if family == 'roberta': labels = torch.tensor([0, 1])
    else: labels = ids.clone(); labels[mask == 0] = -100
    tensors['labels'] = labels.to(torch.int32)
    cases = {}
    for share in ['A', 'B', 'AB']:
        for gname, groups in GROUPINGS.items():
            torch.manual_seed(seed + 7)
            m = cls.from_pretrained(base_dir).eval()
            lc = LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0, fan_in_fan_out=False,
                            init_lora_weights=False,  # B non-zero, so the adapter changes the output and ties are visible
                            modules_to_save=['classifier'] if family == 'roberta' else None)
            m = get_peft_model(m, lc)
            tie(m, family, targets, share, groups)
            check_tied(m, family, targets, share, groups)
            name = f'share{share}-{gname}'
            m.save_pretrained(os.path.join(d, name))
            trainable = {id(p): p for p in m.parameters() if p.requires_grad}
            out_ = m(input_ids=ids, attention_mask=mask, labels=labels)
            out_.loss.backward()
            tensors[f'{name}.logits'] = out_.logits.detach()
            tensors[f'{name}.loss'] = out_.loss.detach().reshape(1)
            seen = set()
            for n, p in m.named_parameters():
                if p.requires_grad and id(p) not in seen and p.grad is not None:
                    seen.add(id(p)); tensors[f'{name}.grad.{n}'] = p.grad.detach().clone()
            # 10 AdamW steps, lr 1e-2, torch defaults (betas .9/.999, eps 1e-8, weight_decay 0.01)
            opt = torch.optim.AdamW(list(trainable.values()), lr=1e-2)
            losses = []
            for step in range(10):
                opt.zero_grad(); l = m(input_ids=ids, attention_mask=mask, labels=labels).loss
                l.backward(); opt.step(); losses.append(l.item())
            tensors[f'{name}.train_losses'] = torch.tensor(losses)
            cases[name] = dict(share=share, groups=groups, trainable_params=sum(p.numel() for p in trainable.values()))
    tensors = {k: v.contiguous().float() if v.dtype.is_floating_point else v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(d, 'expected.safetensors'))
    manifest[family] = dict(targets=targets, r=4, lora_alpha=8, model=f'../{family}/model', cases=cases)
versions = {'torch': torch.__version__}
import transformers, peft, safetensors
versions.update(transformers=transformers.__version__, peft=peft.__version__, safetensors=safetensors.__version__)
json.dump(dict(seed=seed, versions=versions, families=manifest), open(os.path.join(out, 'manifest.json'), 'w'), indent=1)
print(json.dumps(manifest, indent=1))
