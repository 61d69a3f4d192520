import pytest
import torch

from imagefolder import blob_images, write_images
from models import tiny_cond_generator


@pytest.fixture
def cond_gen():
    return tiny_cond_generator()


@pytest.fixture
def cond_inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 16, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])


@pytest.fixture
def one_thread():
    """Run the test with one torch thread (tiny tensors: threads only add overhead on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """25 disc images (16×16 RGB) in a folder: a new domain for the tiny generators."""
    folder = tmp_path_factory.mktemp("blobs")
    write_images(folder, blob_images(25))
    return folder
