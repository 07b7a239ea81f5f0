"""Training crnn layers from Python with torch.optim, and TorchScript."""

import torch

import crnn

torch.set_num_threads(2)


def toy_task(n=48, steps=30, k=6, seed=0):
    """Two classes told apart by the sign of a slow ramp in feature 0."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, steps, k, generator=g) * 0.5
    ramp = torch.linspace(-1, 1, steps)
    x[:, :, 0] += torch.where(y[:, None] == 1, ramp, -ramp)
    lengths = torch.randint(12, steps + 1, (n,), generator=g)
    return x, lengths, y


class Net(torch.nn.Module):
    """A user's own model around a crnn layer."""

    def __init__(self):
        super().__init__()
        self.clstm = crnn.nn.ConvRecurrent(6, 8, kind="lstm", source="cell", window=5, shift=2, pool=2,
                                           pool_shift=2)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x, lengths):
        h, h_lengths = self.clstm(x, lengths)
        mask = (torch.arange(h.shape[1])[None, :] < h_lengths[:, None]).unsqueeze(2)
        return self.out((h * mask).sum(1) / h_lengths[:, None])


def test_adam_lowers_the_loss_of_a_model_with_a_crnn_layer():
    torch.manual_seed(0)
    x, lengths, y = toy_task()
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x, lengths), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    final = torch.nn.functional.cross_entropy(net(x, lengths), y).item()
    assert final < 0.5 * first, (first, final)
    # Every crnn parameter got a gradient and moved.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.clstm.parameters())


def test_paper_clstm_classifier_trains_with_adam():
    torch.manual_seed(1)
    x, lengths, y = toy_task(n=16, steps=40, k=26)
    model = crnn.nn.SequenceClassifier.preset("emotion-clstm", classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(model(x, lengths), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


def test_state_dict_round_trip():
    torch.manual_seed(2)
    a = Net()
    b = Net()
    b.load_state_dict(a.state_dict())
    x, lengths, _ = toy_task(n=4)
    torch.testing.assert_close(a(x, lengths), b(x, lengths), rtol=0, atol=0)
    assert "clstm.lstm_weight_ih" in a.state_dict()


def test_traced_module_gives_the_same_outputs(tmp_path):
    torch.manual_seed(3)
    net = Net().eval()
    x, lengths, _ = toy_task(n=5)
    traced = torch.jit.trace(net, (x, lengths))
    path = tmp_path / "net.pt"
    traced.save(str(path))
    loaded = torch.jit.load(str(path))
    x2, lengths2, _ = toy_task(n=7, seed=9)  # other shapes and lengths than traced with
    torch.testing.assert_close(loaded(x2, lengths2), net(x2, lengths2), rtol=0, atol=0)
    assert "crnn::module_forward" in str(traced.inlined_graph)


def test_the_training_example_runs_and_learns(tmp_path):
    import os
    import subprocess
    source = os.environ.get("CRNN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    r = subprocess.run(["/usr/bin/python3", os.path.join(source, "examples", "python", "train_clstm.py"),
                        "--steps", "20"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    losses = [float(line.split()[-1]) for line in r.stdout.splitlines() if line.startswith("step")]
    assert len(losses) == 3 and losses[-1] < losses[0], r.stdout
    assert (tmp_path / "clstm_state.pt").exists()


def test_set_num_threads_sets_torchs_count():
    before = torch.get_num_threads()
    try:
        assert crnn.set_num_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        crnn.set_num_threads(before)
    import pytest
    with pytest.raises(RuntimeError, match="n must be in 0..256"):
        crnn.set_num_threads(-1)
