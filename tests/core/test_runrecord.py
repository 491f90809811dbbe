"""core.runrecord: what a run records about where it ran."""


def test_a_cpu_run_records_the_cpu_model_not_the_machine_type() -> None:
    import platform

    from core.runrecord import cpu_name, environment_info

    name = environment_info("cpu")["device_name"]
    assert name == cpu_name() and name.rsplit(", ", 1)[1] in ("avx512f", "avx2", "no avx2")
    if platform.system() == "Linux":  # /proc/cpuinfo names the model
        assert name.split(", ")[0] != platform.machine()
