"""Network: a VPC with what Fargate tasks and Redshift Serverless need, nothing idle-billed by default."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming
from components.iam import service_role, statement


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    cidr: str
    account_id: pulumi.Input[str]
    # Availability zone names to use (at least three: Redshift Serverless requires it).
    zones: pulumi.Input[list[str]]
    zone_count: int = 3
    # False (the zero-idle-cost default): jobs run in public subnets with public IPs and a
    # security group that admits nothing; true: jobs run in private subnets behind one NAT gateway.
    nat_gateway: bool = False
    region: pulumi.Input[str]
    flow_log_retention_days: int = 30
    kms_key_arn: pulumi.Input[str] | None = None


class Network(pulumi.ComponentResource):
    """VPC with public and private subnets per zone, a free S3 gateway endpoint, VPC flow logs,
    a locked default security group, a `jobs` security group (egress only) and a `warehouse`
    security group that admits Redshift's port from the jobs group alone and reaches only S3 (HTTPS
    through the gateway endpoint's prefix list), which COPY and UNLOAD need under enhanced VPC routing.

    The private subnets hold the warehouse, and the jobs when `nat_gateway` is on: their route table
    sends outbound traffic through the NAT gateway then, and has no route out of the VPC otherwise
    (S3 stays reachable through the gateway endpoint either way)."""

    vpc_id: pulumi.Output[str]
    job_subnet_ids: pulumi.Output[list[str]]
    warehouse_subnet_ids: pulumi.Output[list[str]]
    jobs_security_group_id: pulumi.Output[str]
    warehouse_security_group_id: pulumi.Output[str]
    assign_public_ip: bool

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:network:Network", name, None, opts)
        tag = naming.physical(name, 200)
        # Public subnets take the first half of the block, private ones the second half.
        blocks = list(ipaddress.IPv4Network(args.cidr).subnets(prefixlen_diff=4))
        public_blocks, private_blocks = blocks[: len(blocks) // 2], blocks[len(blocks) // 2 :]
        zones = pulumi.Output.from_input(args.zones)

        vpc = self._vpc(name, args, tag)
        self._flow_logs(name, args, tag, vpc)
        public, igw, public_rt = self._public_subnets(name, args, tag, vpc, zones, public_blocks)
        private, private_rt = self._private_subnets(name, args, tag, vpc, zones, private_blocks, public, igw)
        s3_endpoint = self._s3_endpoint(name, args, tag, vpc, [public_rt, private_rt])
        jobs_sg, warehouse_sg = self._security_groups(name, args, vpc, s3_endpoint)

        self.vpc_id = vpc.id
        self.assign_public_ip = not args.nat_gateway
        job_subnets = private if args.nat_gateway else public
        self.job_subnet_ids = pulumi.Output.all(*[s.id for s in job_subnets])
        self.warehouse_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.jobs_security_group_id = jobs_sg.id
        self.warehouse_security_group_id = warehouse_sg.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "job_subnet_ids": self.job_subnet_ids,
                "warehouse_subnet_ids": self.warehouse_subnet_ids,
                "jobs_security_group_id": self.jobs_security_group_id,
                "warehouse_security_group_id": self.warehouse_security_group_id,
            }
        )

    def _vpc(self, name: str, args: NetworkArgs, tag: str) -> aws.ec2.Vpc:
        """The VPC, and its default security group stripped of every rule."""
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": tag},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Nothing may use the default security group: it loses all rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=pulumi.ResourceOptions(parent=vpc)
        )
        return vpc

    def _flow_logs(self, name: str, args: NetworkArgs, tag: str, vpc: aws.ec2.Vpc) -> None:
        """Rejected traffic to an encrypted log group, written through a role that may write only there."""
        in_vpc = pulumi.ResourceOptions(parent=vpc)
        flow_logs = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/vpc/{tag}/flow-logs",
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=in_vpc,
        )
        flow_role = service_role(
            f"{name}-flow-logs-role",
            "flow-logs",
            "vpc-flow-logs.amazonaws.com",
            args.account_id,
            [
                statement(
                    ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                    [flow_logs.arn, pulumi.Output.concat(flow_logs.arn, ":*")],
                )
            ],
            parent=vpc,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="REJECT",
            log_destination=flow_logs.arn,
            iam_role_arn=flow_role.arn,
            opts=in_vpc,
        )

    def _public_subnets(
        self,
        name: str,
        args: NetworkArgs,
        tag: str,
        vpc: aws.ec2.Vpc,
        zones: pulumi.Output[list[str]],
        blocks: list[ipaddress.IPv4Network],
    ) -> tuple[list[aws.ec2.Subnet], aws.ec2.InternetGateway, aws.ec2.RouteTable]:
        """One public subnet per zone, routed to an internet gateway; (subnets, gateway, route table)."""
        in_vpc = pulumi.ResourceOptions(parent=vpc)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": tag}, opts=in_vpc)
        route_table = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={"Name": f"{tag}-public"},
            opts=in_vpc,
        )
        subnets = []
        for i in range(args.zone_count):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[i]),
                availability_zone=zones[i],
                map_public_ip_on_launch=False,
                tags={"Name": f"{tag}-public-{i}"},
                opts=in_vpc,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=pulumi.ResourceOptions(parent=subnet),
            )
            subnets.append(subnet)
        return subnets, igw, route_table

    def _private_subnets(
        self,
        name: str,
        args: NetworkArgs,
        tag: str,
        vpc: aws.ec2.Vpc,
        zones: pulumi.Output[list[str]],
        blocks: list[ipaddress.IPv4Network],
        public_subnets: list[aws.ec2.Subnet],
        igw: aws.ec2.InternetGateway,
    ) -> tuple[list[aws.ec2.Subnet], aws.ec2.RouteTable]:
        """One private subnet per zone and their route table: through a NAT gateway in the first public
        subnet when `nat_gateway` is on, else no route out of the VPC; (subnets, route table)."""
        # The aliases name what stacks deployed as `-isolated-<i>`: those subnets are updated, not replaced.
        in_vpc = pulumi.ResourceOptions(parent=vpc)
        subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[i]),
                availability_zone=zones[i],
                tags={"Name": f"{tag}-private-{i}"},
                opts=pulumi.ResourceOptions(parent=vpc, aliases=[pulumi.Alias(name=f"{name}-isolated-{i}")]),
            )
            for i in range(args.zone_count)
        ]
        routes: list[aws.ec2.RouteTableRouteArgsDict] = []
        if args.nat_gateway:
            eip = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags={"Name": tag}, opts=in_vpc)
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                subnet_id=public_subnets[0].id,
                allocation_id=eip.id,
                tags={"Name": tag},
                opts=pulumi.ResourceOptions(parent=vpc, depends_on=[igw]),
            )
            routes = [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}]
        route_table = aws.ec2.RouteTable(
            f"{name}-private-rt", vpc_id=vpc.id, routes=routes, tags={"Name": f"{tag}-private"}, opts=in_vpc
        )
        for i, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=pulumi.ResourceOptions(parent=subnet, aliases=[pulumi.Alias(name=f"{name}-isolated-{i}-rta")]),
            )
        return subnets, route_table

    def _s3_endpoint(
        self, name: str, args: NetworkArgs, tag: str, vpc: aws.ec2.Vpc, route_tables: list[aws.ec2.RouteTable]
    ) -> aws.ec2.VpcEndpoint:
        """The S3 gateway endpoint on every route table."""
        # Gateway endpoints are free: S3 traffic never crosses the internet gateway or NAT.
        return aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=vpc.id,
            vpc_endpoint_type="Gateway",
            service_name=pulumi.Output.concat("com.amazonaws.", args.region, ".s3"),
            route_table_ids=[rt.id for rt in route_tables],
            tags={"Name": f"{tag}-s3"},
            opts=pulumi.ResourceOptions(parent=vpc),
        )

    def _security_groups(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, s3_endpoint: aws.ec2.VpcEndpoint
    ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """The jobs group (no inbound; HTTPS anywhere, Redshift in the VPC) and the warehouse group."""
        jobs_sg = aws.ec2.SecurityGroup(
            f"{name}-jobs-sg",
            name_prefix=naming.physical_prefix("jobs", 255),
            description="Batch and Glue jobs: no inbound, HTTPS and Redshift outbound",
            vpc_id=vpc.id,
            egress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "description": "AWS APIs (S3, ECR, Logs, Redshift Data API)",
                },
                {
                    "protocol": "tcp",
                    "from_port": 5439,
                    "to_port": 5439,
                    "cidr_blocks": [args.cidr],
                    "description": "Redshift inside the VPC",
                },
            ],
            opts=pulumi.ResourceOptions(parent=vpc, delete_before_replace=True),
        )
        warehouse_sg = aws.ec2.SecurityGroup(
            f"{name}-warehouse-sg",
            name_prefix=naming.physical_prefix("warehouse", 255),
            description="Redshift Serverless: port 5439 from the jobs security group only",
            vpc_id=vpc.id,
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 5439,
                    "to_port": 5439,
                    "security_groups": [jobs_sg.id],
                    "description": "jobs",
                }
            ],
            # Enhanced VPC routing sends COPY/UNLOAD through the VPC: HTTPS to S3 through the gateway
            # endpoint's prefix list, and nowhere else.
            egress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "prefix_list_ids": [s3_endpoint.prefix_list_id],
                    "description": "S3 through the gateway endpoint (COPY and UNLOAD)",
                }
            ],
            opts=pulumi.ResourceOptions(parent=vpc, delete_before_replace=True),
        )
        return jobs_sg, warehouse_sg
