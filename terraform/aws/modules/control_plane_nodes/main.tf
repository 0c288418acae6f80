# The further control planes (after the first, which 'cloister apply' initialises): one SEV-SNP
# instance each, launched from the control-plane launch template (SEV-SNP, IMDSv2 with instance
# tags, the state disk), under the name the owner's authorization names. An auto scaling group
# names nothing (a node's name there is its instance ID, known only once it runs), so these are
# individual instances whose name is the instance tag cloister-name (lib/metadata reads it before
# the instance ID), each with its own cloister-control-plane-authorization tag, registered with
# the load balancer's target groups next to the first control plane.

variable "nodes" {
  type        = map(string)
  description = "Node name => the owner's control-plane authorization for that name."
}

variable "launch_template_id" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "target_group_arns" {
  type        = map(string)
  description = "Port => the load balancer's target group for it."
}

variable "metadata" {
  type        = map(string)
  description = "The cloister-* keys lib/metadata reads (instance tags in IMDS), but name and authorization."
}

resource "aws_instance" "node" {
  for_each  = var.nodes
  subnet_id = var.subnet_id
  launch_template {
    id      = var.launch_template_id
    version = "$Latest"
  }
  tags = merge(var.metadata, {
    Name                                 = each.key
    cloister-name                        = each.key
    cloister-control-plane-authorization = each.value
  })
  # A new launch template version (a new AMI, say) never replaces a running control plane: a
  # replacement has a new state disk, which the join service that admitted this one refuses
  # under its name.
  lifecycle {
    ignore_changes = [launch_template]
  }
}

resource "aws_lb_target_group_attachment" "node" {
  for_each = {
    for pair in setproduct(keys(var.nodes), keys(var.target_group_arns)) :
    "${pair[0]}/${pair[1]}" => { node = pair[0], port = pair[1] }
  }
  target_group_arn = var.target_group_arns[each.value.port]
  target_id        = aws_instance.node[each.value.node].id
}

output "names" {
  value = keys(aws_instance.node)
}
