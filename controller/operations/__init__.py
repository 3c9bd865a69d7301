"""What operators run, without click: each module is one concern the CLI prints.

views         status, machines, history and events as the controller wrote them
store_probe   `bosun doctor`: does this store keep the conditional-request promises
enrollment    a machine's derived key and agent config (yaml, env, cloud-init)
policies      least-privilege IAM documents for agents, controllers and operators
"""
