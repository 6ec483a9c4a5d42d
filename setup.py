from setuptools import find_packages, setup

# torch is deliberately unpinned above 2.1: install your build of torch first (see README).
install_requires = [
    "torch>=2.1",
    "diffusers>=0.30,<0.43",
    "huggingface-hub>=0.23",
    "safetensors>=0.4",
    "numpy",
    "Pillow",
    "tqdm",
]

extras = {
    "train": ["accelerate>=0.30", "datasets>=2.19", "tensorboard", "kornia>=0.7"],
    "eval": ["scikit-image>=0.21", "evaluate>=0.4", "kornia>=0.7"],  # kornia: `srdiff degrade`
    "lpips": ["lpips>=0.1.4"],  # pulls torchvision; LPIPS is reported as unavailable without it
    "test": ["pytest>=7", "scikit-image>=0.21", "selenium>=4.11"],  # selenium: the demo's browser test
    # `srdiff demo`; written for Gradio 6's API (`api_visibility`, `ImageSlider`), which 5 does not have.
    "demo": ["gradio>=6,<7", "gradio_client"],
    # `srdiff export-onnx` (onnx) and the onnxruntime backend (`OnnxSRDiffPipeline`, `srdiff upscale --backend onnx`)
    "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
}
extras["all"] = sorted({dep for name, deps in extras.items() if name != "lpips" for dep in deps})

setup(
    name="srdiff-diffusers",
    version="0.1.0",
    description="SRDiff diffusion super-resolution (Li et al., 2021) as a diffusers plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    # The shipped default model (safetensors + configs, about 16 MB).
    # The model card template: a link to the repository's model_card.md, copied into wheels.
    package_data={
        "srdiff_diffusers": ["pretrained/*/*.json", "pretrained/*/*.md", "pretrained/*/*/*", "model_card.md"]
    },
    python_requires=">=3.9",
    install_requires=install_requires,
    extras_require=extras,
    entry_points={"console_scripts": ["srdiff=srdiff_diffusers.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
