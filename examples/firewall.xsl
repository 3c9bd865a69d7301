<?xml version="1.0" encoding="UTF-8"?>
<!--
  iptables allow-list of running machines, from `bosun machines -o xml`.

    bosun machines -o xml > machines.xml
    xsltproc examples/firewall.xsl machines.xml > allow.rules
    iptables-restore -n < allow.rules        # -n: leave other chains alone

  Output is iptables-restore input for the filter table: the BOSUN-ALLOW chain is declared
  (which also empties it), then one ACCEPT rule per address of every machine whose status
  is "running" (seen recently, not lost, not unhealthy), then a RETURN. Jump to it from
  INPUT yourself: `iptables -I INPUT -j BOSUN-ALLOW`.

  Parameters (xsltproc -\-stringparam NAME VALUE):
    chain    chain name (default BOSUN-ALLOW)
    service  only machines of this service (default: all)
    kind     internal | external | both (default internal)
    port     only this TCP destination port (default: any port and protocol)
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:param name="chain" select="'BOSUN-ALLOW'"/>
  <xsl:param name="service" select="''"/>
  <xsl:param name="kind" select="'internal'"/>
  <xsl:param name="port" select="''"/>

  <xsl:template match="/machines">
    <xsl:text>*filter&#10;</xsl:text>
    <xsl:value-of select="concat(':', $chain, ' - [0:0]&#10;')"/>
    <xsl:for-each select="machine[@status = 'running'][$service = '' or @service = $service]">
      <xsl:sort select="@id"/>
      <xsl:variable name="machine" select="."/>
      <xsl:for-each select="address[$kind = 'both' or @kind = $kind]
                                   [translate(., '0123456789abcdefABCDEF.:/', '') = '']">
        <xsl:value-of select="concat('-A ', $chain, ' -s ', normalize-space(.))"/>
        <xsl:if test="$port != ''">
          <xsl:value-of select="concat(' -p tcp --dport ', $port)"/>
        </xsl:if>
        <xsl:value-of select="concat(' -m comment --comment &quot;bosun ', $machine/@id)"/>
        <xsl:if test="$machine/@service != ''">
          <xsl:value-of select="concat(' ', $machine/@service)"/>
        </xsl:if>
        <xsl:text>" -j ACCEPT&#10;</xsl:text>
      </xsl:for-each>
    </xsl:for-each>
    <xsl:value-of select="concat('-A ', $chain, ' -j RETURN&#10;')"/>
    <xsl:text>COMMIT&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
