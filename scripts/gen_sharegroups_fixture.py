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
import sys, os, torch
# the part every reference-fixture generator shares, beside gen_fixtures.py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf-reference'))
from reference_case import base_tensors, batch, layers_of, module, record_case, save_expected, tie, write_manifest
from transformers import RobertaForSequenceClassification, LlamaForCausalLM
from peft import LoraConfig, get_peft_model

fixtures, seed = sys.argv[1], int(sys.argv[2])
out = os.path.join(fixtures, 'sharegroups')
FAMILIES = {
    'roberta': (RobertaForSequenceClassification, ['query', 'key', 'value']),
    'llama': (LlamaForCausalLM, ['q_proj', 'k_proj', 'v_proj']),
}
GROUPINGS = {'k2': [[0, 1], [2]], 'split': [[0, 2], [1]]}
B, T = 2, 16


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
    ids, mask = batch(cfg.vocab_size, family, seed, B, T)
    tensors, labels = base_tensors(base, family, ids, mask)
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
            trainable = record_case(m, name, ids, mask, labels, tensors)
            cases[name] = dict(share=share, groups=groups, trainable_params=sum(p.numel() for p in trainable))
    save_expected(tensors, d)
    manifest[family] = dict(targets=targets, r=4, lora_alpha=8, model=f'../{family}/model', cases=cases)
write_manifest(out, seed, manifest)
