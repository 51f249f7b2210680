def test_local_ray_runs_tasks_on_loopback(ray_session):
    ray = ray_session

    @ray.remote
    def square(x):
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
    assert ray.cluster_resources()["CPU"] == 2
    assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in ray.nodes())
