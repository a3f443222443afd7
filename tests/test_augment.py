import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from adcore.augment import (CIFAR_MEAN, CIFAR_STD, RECIPES, Augment, adjust_hue, color_jitter, default_recipe,
                            gaussian_blur, make_augment, random_crop, random_flip)


def _rgb(n=4, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("sigma", [0.5, 1, 2, 4, 8, 16, 32])
def test_blur_matches_pillow_exactly(sigma):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    img[5:12, 3:30] = 255  # an edge, so the blur has structure to smooth
    ref = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))
    out = gaussian_blur(torch.from_numpy(img).permute(2, 0, 1)[None], sigma)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out, ref)


def test_blur_grey_batch_and_identity():
    x = _rgb(3)[:, :1]
    for i in range(3):
        ref = np.asarray(Image.fromarray(x[i, 0].numpy()).filter(ImageFilter.GaussianBlur(radius=2)))
        np.testing.assert_array_equal(gaussian_blur(x, 2)[i, 0].numpy(), ref)
    assert torch.equal(gaussian_blur(x, 0), x)
    with pytest.raises(TypeError):
        gaussian_blur(x.float(), 1)


def test_blur_reduces_variance_monotonically():
    x = _rgb(8)
    stds = [gaussian_blur(x, s).float().std().item() for s in (0, 1, 2, 4, 8)]
    assert all(a > b for a, b in zip(stds, stds[1:]))


def test_random_crop_is_a_window_of_the_padded_image():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop(x, 8, padding=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert any(torch.equal(out[i], padded[i, :, a:a + 8, b:b + 8]) for a in range(5) for b in range(5))
    assert torch.equal(random_crop(x, 8, padding=0), x)


def test_random_crop_offsets_vary_per_sample():
    torch.manual_seed(0)
    x = torch.ones(64, 1, 4, 4)
    out = random_crop(x, 4, padding=4)
    zeros = out.view(64, -1).eq(0).sum(1)
    assert len(set(zeros.tolist())) > 3


def test_flip_per_sample():
    torch.manual_seed(0)
    x = torch.rand(200, 3, 5, 5)
    out = random_flip(x)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped | same)
    assert 60 < flipped.sum() < 140


def test_jitter_zero_is_identity_and_hue_rotation():
    x = torch.rand(5, 3, 6, 6)
    torch.testing.assert_close(color_jitter(x, 0.0), x, atol=1e-5, rtol=0)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1
    green = adjust_hue(red, torch.full((1, 1, 1, 1), 1 / 3))
    torch.testing.assert_close(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-5, rtol=0)


def test_jitter_small_change():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    d = (color_jitter(x, 0.01) - x).abs()
    assert 0 < d.max() < 0.06


def test_cifar_recipe_train_and_test():
    x = _rgb(6)
    aug = make_augment("cifar")
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(aug(x, train=False), (x.float() / 255 - mean) / std)
    torch.manual_seed(0)
    out = aug(x, train=True)
    assert out.shape == (6, 3, 32, 32) and out.dtype == torch.float32
    assert not torch.allclose(out, aug(x, train=False))


def test_cifar_normalize_recipe_normalizes_without_augmenting():
    x = _rgb(4)
    aug = make_augment("cifar_normalize")
    torch.testing.assert_close(aug(x, train=True), make_augment("cifar")(x, train=False))
    torch.testing.assert_close(aug(x, train=True), aug(x, train=False))


def test_none_recipe_scales_only():
    x = _rgb(2)[:, :1]
    torch.testing.assert_close(make_augment("none")(x, train=True), x.float() / 255)


def test_imagenet_center_crop_at_test_time():
    x = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8)
    assert RECIPES["imagenet"](x, train=False).shape == (2, 3, 224, 224)
    assert RECIPES["imagenet"](x, train=True).shape == (2, 3, 224, 224)


def test_defaults_and_errors():
    assert default_recipe((1, 28, 28)) == "none"
    assert default_recipe((3, 32, 32)) == "cifar"
    assert default_recipe((3, 224, 224)) == "imagenet"
    assert isinstance(make_augment(Augment(flip=True)), Augment)
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augment("autoaugment")


def test_oe_blur_sits_where_the_seed_puts_it():
    """flip -> padded crop -> PIL GaussianBlur (the black padding band blurred too) -> to [0, 1], bit for bit;
    samples with sigma 0 pass unblurred."""
    from PIL import Image, ImageFilter, ImageOps

    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    aug = Augment(flip=True, crop=32, padding=4)
    params = {"flip": torch.tensor([True, False]).view(2, 1, 1, 1), "oy": torch.tensor([1, 7]),
              "ox": torch.tensor([6, 0])}
    out = aug.apply(x.float() / 255, params, blur=torch.tensor([2.0, 0.0]))
    img = Image.fromarray(x[0].permute(1, 2, 0).numpy()).transpose(Image.FLIP_LEFT_RIGHT)
    img = ImageOps.expand(img, border=4, fill=0).crop((6, 1, 38, 33)).filter(ImageFilter.GaussianBlur(2))
    expected = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    assert torch.equal(out[0], expected)
    plain = aug.apply(x.float() / 255, params)
    assert torch.equal(out[1], plain[1]) and not torch.equal(out[0], plain[0])


@pytest.mark.parametrize("shape,padding", [((5, 3, 32, 32), 4), ((3, 3, 30, 34), 0)])
def test_draw_many_is_each_generator_drawing_every_factor_on_its_own(shape, padding):
    """K batches' factors in five in-place draws per generator: on a CPU bit for bit the separate draws (jitter
    factors, flip, crop offsets, noise, in that order) of each generator, concatenated."""
    from adcore.augment import crop_offsets, jitter_params

    aug = Augment(jitter=0.01, flip=True, crop=28, padding=padding, noise=0.001)
    n, c, h, w = shape

    def separate(g):
        p = jitter_params(n, 0.01, "cpu", g)
        p["flip"] = torch.rand(n, 1, 1, 1, generator=g) < 0.5
        p["oy"], p["ox"] = crop_offsets(n, h + 2 * padding, w + 2 * padding, 28, "cpu", g)
        p["noise"] = torch.randn(n, c, 28, 28, generator=g)
        return p

    def nth(seed, batch):  # a lone generator's factors of its batch-th batch
        g = torch.Generator().manual_seed(seed)
        for _ in range(batch):
            p = separate(g)
        return p

    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    for batch in (1, 2):  # the second time from where each generator stands
        got = aug.draw_many(shape, "cpu", gens)
        refs = [nth(s, batch) for s in (1, 2, 3)]
        assert got.keys() == refs[0].keys()
        for key in got:
            assert torch.equal(got[key], torch.cat([r[key] for r in refs])), key
    assert aug.draw_many(shape, "cpu", [torch.Generator().manual_seed(1)])["oy"].max() <= h + 2 * padding - 28
    with pytest.raises(ValueError, match="crop 40 is larger"):
        Augment(crop=40).draw((2, 3, 32, 32))


def test_pil_jitter_is_the_seeds_colorjitter_on_pil_images_bit_for_bit():
    """Augment(pil=True): torchvision's ColorJitter steps through Pillow (adjust_brightness ... adjust_hue) in each
    image's drawn order give the same 8-bit images, for the seed's 0.01 and for strong factors; grey images too."""
    import torchvision.transforms._functional_pil as FP
    from PIL import Image

    steps = (FP.adjust_brightness, FP.adjust_contrast, FP.adjust_saturation, FP.adjust_hue)
    names = ("brightness", "contrast", "saturation", "hue")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (48, 3, 8, 8), generator=g, dtype=torch.uint8)
    x[:6] = x[:6, :1]  # grey: hue and saturation leave them
    for s in (0.01, 0.5):
        aug = Augment(jitter=s, pil=True)
        p = aug.draw(tuple(x.shape), "cpu", g)
        assert sorted(p["order"][0].tolist()) == [0, 1, 2, 3]
        got = (aug.apply(x.float() / 255, p) * 255).round().to(torch.uint8)
        for i in range(len(x)):
            im = Image.fromarray(x[i].permute(1, 2, 0).numpy())
            for k in p["order"][i].tolist():
                im = steps[k](im, float(p[names[k]][i]))
            assert torch.equal(got[i], torch.from_numpy(np.array(im)).permute(2, 0, 1)), (s, i)
    # the float jitter draws no order, so its random stream is what it was
    assert "order" not in Augment(jitter=0.01).draw((2, 3, 8, 8), "cpu", torch.Generator().manual_seed(0))
    # the Pillow rounding darkens: the seed's training images sit below the unjittered ones on average
    aug = Augment(jitter=0.01, pil=True)
    y = aug.apply(x.float() / 255, aug.draw(tuple(x.shape), "cpu", g))
    assert -3 / 255 < (y - x.float() / 255).mean() < -0.5 / 255
