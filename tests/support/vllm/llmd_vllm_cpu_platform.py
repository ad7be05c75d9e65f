"""A vLLM platform plugin (entry point group vllm.platform_plugins; tests/support/vllm/build.sh registers it).
vLLM's CUDA wheel finds no GPU on the test machine, so no platform at all. This one is vLLM's CPU platform that
answers the configuration's "is this a CUDA-like device?" as the pods' GPUs would: vLLM 0.14.1 refuses EPLB and
expert-parallel settings on anything else. Enough to parse, validate and build every engine's configuration;
nothing here runs a kernel."""


def platform():
    return "llmd_vllm_cpu_platform.parser_platform"


def __getattr__(name):   # the class is made on first use: vllm.platforms is still importing when platform() runs
    if name != "parser_platform":
        raise AttributeError(name)
    from vllm.platforms.cpu import CpuPlatform

    class ParserPlatform(CpuPlatform):
        @classmethod
        def is_cuda_alike(cls):
            return True

    return ParserPlatform
