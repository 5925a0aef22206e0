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
import sys, os, torch
# the part every reference-fixture generator shares, beside gen_fixtures.py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf-reference'))
from reference_case import base_tensors, batch, record_case, save_expected, write_manifest
from transformers import GPT2LMHeadModel, RobertaForSequenceClassification, LlamaForCausalLM
from peft import VeraConfig, get_peft_model

fixtures, seed = sys.argv[1], int(sys.argv[2])
out = os.path.join(fixtures, 'vera')
R, KEY, D_INITIAL = 8, 4321, 0.1
FAMILIES = {
    'gpt2': (GPT2LMHeadModel, ['c_attn', 'c_fc'], True),
    'roberta': (RobertaForSequenceClassification, ['query', 'value', 'intermediate.dense'], False),
    'llama': (LlamaForCausalLM, ['q_proj', 'v_proj', 'down_proj'], False),
}
B, T = 2, 16


os.makedirs(out, exist_ok=True)
manifest = {}
for family, (cls, targets, fan) in FAMILIES.items():
    base_dir = os.path.join(fixtures, family, 'model')
    d = os.path.join(out, family); os.makedirs(d, exist_ok=True)
    base = cls.from_pretrained(base_dir).eval()
    cfg = base.config
    ids, mask = batch(cfg.vocab_size, family, seed, B, T)
    tensors, labels = base_tensors(base, family, ids, mask)
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
    trainable = record_case(m, 'vera', ids, mask, labels, tensors)
    save_expected(tensors, d)
    manifest[family] = dict(targets=targets, r=R, projection_prng_key=KEY, d_initial=D_INITIAL, model=f'../{family}/model',
                            vera_A=list(vA.shape), vera_B=list(vB.shape),
                            trainable_params=sum(p.numel() for p in trainable))
write_manifest(out, seed, manifest)
